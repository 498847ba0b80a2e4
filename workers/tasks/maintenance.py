"""Periodic upkeep (celery beat): re-send jobs whose message was lost, and remove uploads that
killed web processes left behind."""

from celery import shared_task


@shared_task(acks_late=True)
def jobs_reap_task() -> int:
    """Send the task of every lost job again (apps.core.job_reaper); the claim makes an extra
    delivery harmless, and the reaper sends each loss once."""
    from apps.core.job_reaper import jobs_reap

    return jobs_reap()


@shared_task(acks_late=True)
def upload_leftovers_remove_task() -> int:
    """Delete old files from the upload folder (apps.core.uploads); safe to run twice."""
    from apps.core.uploads import upload_leftovers_remove

    return upload_leftovers_remove()
