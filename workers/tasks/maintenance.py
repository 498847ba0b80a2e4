"""Periodic upkeep (celery beat): re-send jobs whose message was lost."""

from celery import shared_task


@shared_task(acks_late=True)
def jobs_reap_task() -> int:
    """Send the task of every lost job again (apps.core.job_reaper); the claim makes an extra
    delivery harmless, and the reaper sends each loss once."""
    from apps.core.job_reaper import jobs_reap

    return jobs_reap()
