"""Writes for datasets: accept an upload, ingest it on the worker."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max, Sum
from django.utils.translation import ngettext

from apps.audit.services import audit_record
from apps.core.errors import InvalidInput, PayloadTooLarge, QuotaExceeded
from apps.core.jobs import JobStatus, ProgressReporter, job_finish, job_run
from apps.core.text import human_size
from apps.datasets import archives
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion, Split
from apps.tenants.models import Organization
from workers.ml.images import ImageDecodeError, decode_image, encode_png

#: share of each class held out for validation and for the final test
VALIDATION_SHARE = 0.15
TEST_SHARE = 0.15
SPLIT_SEED = 0


def organization_storage_used(*, organization: Organization) -> int:
    totals = DatasetVersion.unscoped.filter(organization=organization).aggregate(
        source=Sum("source_size"), stored=Sum("stored_bytes")
    )
    return (totals["source"] or 0) + (totals["stored"] or 0)


def _check_upload(*, organization: Organization, upload: UploadedFile) -> None:
    limit = settings.LEPTON_MAX_UPLOAD_BYTES
    if upload.size > limit:
        raise PayloadTooLarge(
            f"'{upload.name}' is {human_size(upload.size)}; uploads are limited to "
            f"{human_size(limit)}. Split the dataset into several uploads.",
            field="file",
        )
    if upload.size == 0:
        raise InvalidInput(f"'{upload.name}' is empty.", field="file")
    used = organization_storage_used(organization=organization)
    if used + upload.size > organization.storage_quota_bytes:
        raise QuotaExceeded(
            f"This upload would take your organization's storage to "
            f"{(used + upload.size) / 1024**3:.2f} GB, over its quota of "
            f"{organization.storage_quota_bytes / 1024**3:.2f} GB. Delete datasets you no longer "
            "need or ask a platform admin for a larger quota.",
            field="file",
        )


def dataset_create(
    *, organization: Organization, user: Any, name: str, upload: UploadedFile | None
) -> DatasetVersion:
    """Create a dataset from an uploaded zip of class folders; ingestion runs on a worker.

    The archive is checked before anything is stored (a zip, with images in class folders,
    within the size limit and the organization's quota); the returned version is queued.
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Name the dataset.", field="name")
    if len(name) > 120:
        raise InvalidInput("The dataset name is too long: 120 characters at most.", field="name")
    if upload is None:
        raise InvalidInput("Attach a zip archive of class folders as 'file'.", field="file")
    _check_upload(organization=organization, upload=upload)
    archives.inspect_zip(
        upload.file, max_entries=settings.LEPTON_MAX_ARCHIVE_ENTRIES, source_name=upload.name
    )
    with transaction.atomic():
        dataset = Dataset.unscoped.create(organization=organization, name=name, created_by=user)
        version = _version_create(dataset=dataset, upload=upload)
        audit_record(organization=organization, actor=user, action="dataset.create", target=dataset)
    return version


def _version_create(*, dataset: Dataset, upload: UploadedFile) -> DatasetVersion:
    # unscoped: a service is called with its organization, not always inside tenant_scope
    versions = DatasetVersion.unscoped.filter(dataset=dataset)
    number = (versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = DatasetVersion.unscoped.create(
        organization=dataset.organization,
        dataset=dataset,
        number=number,
        source_name=upload.name[:255],
        source_size=upload.size,
        status=JobStatus.QUEUED,
        message="Waiting for a worker",
    )
    path = f"orgs/{dataset.organization_id}/datasets/{dataset.pk}/v{number}/source.zip"
    upload.file.seek(0)
    version.source.save(path, upload, save=False)
    version.save(update_fields=["source"])
    transaction.on_commit(lambda: _enqueue_ingest(version.pk))
    return version


def _enqueue_ingest(version_id: uuid.UUID) -> None:
    from workers.tasks.datasets import dataset_version_ingest_task

    dataset_version_ingest_task.delay(str(version_id))


def assign_splits(labels_by_key: dict[str, str], *, seed: int = SPLIT_SEED) -> dict[str, str]:
    """Deterministic stratified split: same items and seed, same split, whatever the order.

    Each class with at least 3 images gets at least one validation and one test image.
    """
    by_label: dict[str, list[str]] = defaultdict(list)
    for key, label in labels_by_key.items():
        by_label[label].append(key)
    result: dict[str, str] = {}
    for label in sorted(by_label):
        keys = sorted(by_label[label])
        random.Random(f"{seed}:{label}").shuffle(keys)
        n = len(keys)
        n_test = max(1, int(n * TEST_SHARE + 0.5)) if n >= 3 else 0
        n_val = max(1, int(n * VALIDATION_SHARE + 0.5)) if n >= 3 else 0
        for i, key in enumerate(keys):
            if i < n_test:
                result[key] = Split.TEST
            elif i < n_test + n_val:
                result[key] = Split.VALIDATION
            else:
                result[key] = Split.TRAIN
    return result


def dataset_version_ingest(*, version_id: Any) -> DatasetVersion | None:
    """Unpack a queued version's archive into canonical PNG items with per-class counts.

    Safe to run twice: it claims the row first, and a re-run after a crash starts the version
    over. Raises JobBusy when another live worker holds the job.
    """
    return job_run(DatasetVersion, version_id, _ingest, what="Ingestion")


def _ingest(version: DatasetVersion) -> None:
    _discard_items(version)
    reporter = ProgressReporter(version)
    reporter.report(force=True, message="Reading the archive", progress=0.0)
    max_image = settings.LEPTON_MAX_IMAGE_BYTES
    budget = settings.LEPTON_MAX_ARCHIVE_BYTES
    skipped: list[dict[str, str]] = []
    pending: list[DatasetItem] = []
    seen_hashes: dict[str, str] = {}
    base = _items_folder(version)
    with (
        version.source.open("rb") as fileobj,
        archives.open_zip(
            fileobj,
            max_entries=settings.LEPTON_MAX_ARCHIVE_ENTRIES,
            source_name=version.source_name,
        ) as archive,
    ):
        entries = list(archives.iter_entries(archive))
        total = max(1, len(entries))
        for index, entry in enumerate(entries, start=1):
            if isinstance(entry, archives.Skipped):
                skipped.append(entry.as_dict())
                continue
            try:
                raw = archives.read_entry(archive, entry, limit=min(max_image, budget))
            except PayloadTooLarge as exc:
                if budget < max_image:
                    raise PayloadTooLarge(
                        "The archive unpacks to more than "
                        f"{human_size(settings.LEPTON_MAX_ARCHIVE_BYTES)}. "
                        "Split it into several uploads."
                    )
                skipped.append({"path": entry.name, "reason": exc.message})
                continue
            except archives.UnreadableEntry as exc:
                skipped.append({"path": entry.name, "reason": exc.reason})
                continue
            budget -= len(raw)
            try:
                image = decode_image(raw)
            except ImageDecodeError as exc:
                skipped.append({"path": entry.name, "reason": exc.reason})
                continue
            png = encode_png(image)
            digest = hashlib.sha256(png).hexdigest()
            if digest in seen_hashes:
                skipped.append(
                    {"path": entry.name, "reason": f"exact duplicate of {seen_hashes[digest]}"}
                )
                continue
            seen_hashes[digest] = entry.name
            name = default_storage.save(f"{base}/{uuid.uuid4().hex}.png", ContentFile(png))
            pending.append(
                DatasetItem(
                    organization=version.organization,
                    version=version,
                    file=name,
                    original_name=entry.name[:500],
                    label=entry.label[:200],
                    width=image.width,
                    height=image.height,
                    sha256=digest,
                )
            )
            reporter.report(
                progress=0.95 * index / total,
                message=f"Read {index} of {total} entries",
            )
    if not pending:
        # The message sends the user to the skipped files; keep them on the failed version.
        DatasetVersion.unscoped.filter(pk=version.pk).update(skipped=skipped)
        raise InvalidInput(
            "No readable image was found in the archive; see the skipped files for reasons."
        )
    labels = {item.sha256: item.label for item in pending}
    splits = assign_splits(labels)
    counts: dict[str, dict[str, int]] = {}
    for item in pending:
        item.split = splits[item.sha256]
        per_class = counts.setdefault(
            item.label, {Split.TRAIN: 0, Split.VALIDATION: 0, Split.TEST: 0, "total": 0}
        )
        per_class[item.split] += 1
        per_class["total"] += 1
    stored = sum(default_storage.size(item.file.name) for item in pending)
    with transaction.atomic():
        DatasetItem.unscoped.bulk_create(pending, batch_size=500)
        message = ngettext(
            "Ready: %(n)d image in %(c)d classes",
            "Ready: %(n)d images in %(c)d classes",
            len(pending),
        ) % {"n": len(pending), "c": len(counts)}
        if skipped:
            message += ngettext(", %(n)d file skipped", ", %(n)d files skipped", len(skipped)) % {
                "n": len(skipped)
            }
        job_finish(
            version,
            status=JobStatus.SUCCEEDED,
            message=message,
            item_count=len(pending),
            class_counts=counts,
            skipped=skipped,
            stored_bytes=stored,
        )


def _items_folder(version: DatasetVersion) -> str:
    return f"orgs/{version.organization_id}/datasets/{version.dataset_id}/v{version.number}/items"


def _discard_items(version: DatasetVersion) -> None:
    """Remove what an interrupted earlier attempt left, so a re-run starts clean."""
    DatasetItem.unscoped.filter(version=version).delete()
    folder = _items_folder(version)
    try:
        _dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(f"{folder}/{name}")
