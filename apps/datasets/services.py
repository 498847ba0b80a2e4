"""Writes for datasets: accept an upload, ingest it on the worker."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.core.job_registry import job_enqueue_on_commit, job_execute
from apps.core.jobs import JobStatus
from apps.core.text import human_size
from apps.datasets import archives
from apps.datasets.ingest import ingest_images
from apps.datasets.jobs import INGEST
from apps.datasets.models import Dataset, DatasetKind, DatasetVersion
from apps.datasets.storage import storage_quota_check
from apps.tenants.models import Organization


def _check_upload(*, organization: Organization, upload: UploadedFile) -> None:
    limit = settings.LEPTON_MAX_UPLOAD_BYTES
    size = upload.size or 0  # an uploaded file always has its size; the stubs allow None
    if size > limit:
        raise PayloadTooLarge(
            f"'{upload.name}' is {human_size(size)}; uploads are limited to "
            f"{human_size(limit)}. Split the dataset into several uploads.",
            field="file",
        )
    if size == 0:
        raise InvalidInput(f"'{upload.name}' is empty.", field="file")
    # Only the upload's own size is known here; the images decoded from it are checked
    # against the quota again while they are stored (apps.datasets.ingest).
    storage_quota_check(
        organization=organization,
        adding_bytes=size,
        what=_("The upload '%(name)s'") % {"name": upload.name},
        field="file",
    )


def dataset_create(
    *,
    organization: Organization,
    user: Any,
    name: str,
    upload: UploadedFile | None,
    kind: str = DatasetKind.IMAGE,
) -> DatasetVersion:
    """Create a dataset from an upload; its first version is queued for ingestion on a worker.

    `kind` "image": a zip or tar(.gz) of class folders (optionally with a manifest CSV);
    "tabular": a CSV of market data. The upload is checked before anything is stored (format,
    size limit, the organization's quota).
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Name the dataset.", field="name")
    if len(name) > 120:
        raise InvalidInput("The dataset name is too long: 120 characters at most.", field="name")
    if kind not in DatasetKind.values:
        raise InvalidInput(
            f"kind must be one of {', '.join(DatasetKind.values)}; got {kind!r}.", field="kind"
        )
    if upload is None:
        what = (
            "a CSV file" if kind == DatasetKind.TABULAR else "a zip or tar archive of class folders"
        )
        raise InvalidInput(f"Attach {what} as 'file'.", field="file")
    _check_upload(organization=organization, upload=upload)
    source_kind = inspect_upload(kind=kind, upload=upload)
    with transaction.atomic():
        dataset = Dataset.objects.create(
            organization=organization, name=name, created_by=user, kind=kind
        )
        version = _version_create(dataset=dataset, upload=upload, source_kind=source_kind)
        audit_record(organization=organization, actor=user, action="dataset.create", target=dataset)
    return version


def inspect_upload(*, kind: str, upload: UploadedFile) -> str:
    """Check an upload's format before it is kept; returns its source kind (zip, tar, csv)."""
    if kind == DatasetKind.TABULAR:
        from apps.datasets.tabular import inspect_csv

        return inspect_csv(upload)
    return archives.inspect_archive(
        upload.file,  # type: ignore[arg-type]  # an upload always holds its file
        max_entries=settings.LEPTON_MAX_ARCHIVE_ENTRIES,
        source_name=upload.name or "",
    )


def _version_create(
    *,
    dataset: Dataset,
    upload: UploadedFile,
    source_kind: str,
    parent: DatasetVersion | None = None,
) -> DatasetVersion:
    # A service is called with its organization, not always inside tenant_scope.
    versions = DatasetVersion.objects.for_organization(dataset.organization_id).filter(
        dataset=dataset
    )
    number = (versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = DatasetVersion.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        number=number,
        parent=parent,
        source_kind=source_kind,
        source_name=(upload.name or "")[:255],
        source_size=upload.size or 0,
        status=JobStatus.QUEUED,
        message="Waiting for a worker",
    )
    extension = {"csv": "csv", "tar": "tar"}.get(source_kind, "zip")
    path = f"orgs/{dataset.organization_id}/datasets/{dataset.pk}/v{number}/source.{extension}"
    upload.seek(0)
    version.source.save(path, upload, save=False)
    version.save(update_fields=["source"])
    job_enqueue_on_commit(INGEST, version.pk)
    return version


def dataset_version_ingest(*, version_id: Any) -> DatasetVersion | None:
    """Unpack a queued version's archive into canonical PNG items with per-class counts.

    Safe to run twice: it claims the row first, and a re-run after a crash starts the version
    over. Raises JobBusy when another live worker holds the job.
    """
    return job_execute(INGEST, version_id)


def ingest_work(version: DatasetVersion) -> None:
    """The work function of an ingestion job: ingest the claimed version (tables or images)."""
    if version.dataset.kind == DatasetKind.TABULAR:
        from apps.datasets.tabular import ingest_tabular

        ingest_tabular(version)
    else:
        ingest_images(version)
