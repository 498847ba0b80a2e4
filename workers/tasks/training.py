"""Training tasks (gpu queue, prefetch 1)."""

from celery import shared_task


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def training_run_execute_task(self, run_id: str) -> None:  # noqa: ANN001
    from apps.core.jobs import JobBusy
    from apps.training.services import training_run_execute

    try:
        training_run_execute(run_id=run_id)
    except JobBusy as busy:
        raise self.retry(countdown=busy.retry_in)
