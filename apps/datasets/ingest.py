"""Image ingestion: unpack an uploaded archive into canonical PNG items, splits and counts.

Runs on a worker (cpu queue) inside the version's tenant scope; see
apps.datasets.services.dataset_version_ingest.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import defaultdict

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.translation import ngettext

from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.core.jobs import JobStatus, ProgressReporter, job_finish
from apps.core.text import human_size
from apps.datasets import archives
from apps.datasets.models import DatasetItem, DatasetVersion, Split
from workers.ml.images import ImageDecodeError, decode_image, encode_png

#: share of each class held out for validation and for the final test
VALIDATION_SHARE = 0.15
TEST_SHARE = 0.15
SPLIT_SEED = 0


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


def ingest_images(version: DatasetVersion) -> None:
    """Ingest an image version's archive; raises ServiceError when nothing usable is in it."""
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
