"""Dataset tasks (cpu queue)."""

from celery import shared_task


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def dataset_version_ingest_task(self, version_id: str) -> None:  # noqa: ANN001
    from apps.core.jobs import JobBusy
    from apps.datasets.services import dataset_version_ingest

    try:
        dataset_version_ingest(version_id=version_id)
    except JobBusy as busy:
        raise self.retry(countdown=busy.retry_in)
