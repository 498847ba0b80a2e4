"""The ingestion job kind: a new dataset version is unpacked on a cpu worker."""

from apps.core.job_registry import JobKind, register

INGEST = register(
    JobKind(
        name="dataset_version.ingest",
        model="datasets.DatasetVersion",
        # the name queued messages carry since the first release; keep it
        task="workers.tasks.datasets.dataset_version_ingest_task",
        work="apps.datasets.services.ingest_work",
        what="Ingestion",
        queue="cpu",
    )
)
