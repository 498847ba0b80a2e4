"""Deleting a dataset: its versions, items and the files nothing else uses.

What a dataset stores lives in two places: its own folder, orgs/<org>/datasets/<dataset>/
(uploaded archives, loose images added to a version, tabular data), and the image files its
items point at: the pack files its versions' ingestions wrote (orgs/<org>/packs/<version>/),
or, on an object store, content-addressed whole files shared by the organization. Another
dataset's items may point at the same image files (an image uploaded twice is stored once, see
apps.datasets.ingest): those files stay, and their bytes are counted from then on against the
earliest version that uses them, so the storage quota keeps counting what is on disk.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.db import transaction
from django.db.models import F

from apps.audit.services import audit_record
from apps.core.errors import Conflict, check_may_change
from apps.core.jobs import JobStatus
from apps.core.text import human_size
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetDeleted:
    """What a deletion did: the dataset's name, its versions, and the bytes it freed."""

    name: str
    versions: int
    freed_bytes: int

    @property
    def message(self) -> str:
        return (
            f"Deleted '{self.name}' ({self.versions} version{'s' if self.versions != 1 else ''}): "
            f"{human_size(self.freed_bytes)} freed."
        )


def dataset_delete(*, dataset: Dataset, user: Any, role: str) -> DatasetDeleted:
    """Delete `dataset` with its versions and items, then the files nothing else uses.

    Admins and owners may delete any dataset of the organization, members those they uploaded.

    Raises:
        ServiceError (403): a member deleting another member's dataset.
        Conflict (409): a version is still being ingested, or models were trained on the
            dataset (they keep pointing at their dataset version; it cannot go before them).
    """
    check_may_change(
        action="delete",
        role=role,
        user=user,
        created_by_id=dataset.created_by_id,
        what=f"'{dataset.name}'",
    )
    organization_id, dataset_id = dataset.organization_id, dataset.pk
    with transaction.atomic():
        # Locked: an ingestion cannot start on one of them while they are being deleted.
        versions = list(
            DatasetVersion.objects.for_organization(organization_id)
            .select_for_update()
            .filter(dataset=dataset)
            .order_by("number")
        )
        _check_deletable(dataset, versions)
        images = _image_files(
            DatasetItem.objects.for_organization(organization_id).filter(version__in=versions)
        )
        stored = sum(v.source_size + v.stored_bytes for v in versions)
        # A version protects the one it was derived from; all of them go here.
        DatasetVersion.objects.for_organization(organization_id).filter(dataset=dataset).update(
            parent=None
        )
        dataset.delete()
        kept = _keep_shared(organization_id, images, owners={str(v.pk) for v in versions})
        deleted = DatasetDeleted(
            name=dataset.name, versions=len(versions), freed_bytes=stored - sum(kept.values())
        )
        audit_record(
            organization=dataset.organization,
            actor=user,
            action="dataset.delete",
            target=None,
            data={"dataset": str(dataset_id), "name": dataset.name, "versions": len(versions)}
            | {"freed_bytes": deleted.freed_bytes},
        )
        # The files go once the rows are gone for good; were that to fail half-way, what is
        # left is files nothing points at, never rows pointing at nothing.
        transaction.on_commit(
            lambda: _delete_files(organization_id, dataset_id, versions, images - set(kept))
        )
    return deleted


def _check_deletable(dataset: Dataset, versions: list[DatasetVersion]) -> None:
    """Refuse while a version is being ingested or models were trained on the dataset."""
    busy = [v.number for v in versions if v.status in (JobStatus.QUEUED, JobStatus.RUNNING)]
    if busy:
        raise Conflict(
            f"Version {busy[0]} of '{dataset.name}' is still being ingested. Wait until it "
            "is ready or has failed, then delete the dataset."
        )
    models = sorted(
        set(
            DatasetVersion.objects.for_organization(dataset.organization_id)
            .filter(dataset=dataset, model_configs__isnull=False)
            .values_list("model_configs__name", flat=True)
            .distinct()
        )
    )
    if models:
        shown = ", ".join(f"'{name}'" for name in models[:5])
        more = f" and {len(models) - 5} more" if len(models) > 5 else ""
        raise Conflict(
            f"'{dataset.name}' cannot be deleted: the models {shown}{more} were trained on "
            "it, and a model keeps the dataset version it learned from. Delete those models "
            "first (on a run page of each, or DELETE models/{id}/)."
        )


def _image_files(items: Any) -> set[str]:
    names = set(items.values_list("file", flat=True).distinct())
    return names | set(items.exclude(thumbnail="").values_list("thumbnail", flat=True).distinct())


def _keep_shared(organization_id: Any, names: set[str], *, owners: set[str]) -> dict[str, int]:
    """The image files that items of other datasets still point at, with the bytes each of
    those from one of the deleted versions' packs now counts against the earliest version
    using it (in the same transaction as the deletion)."""
    others = DatasetItem.objects.for_organization(organization_id)
    ordered = sorted(names)
    users: dict[str, Any] = {}  # file name -> the earliest remaining version pointing at it
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for field in ("file", "thumbnail"):
            rows = (
                others.filter(**{f"{field}__in": chunk})
                .order_by("version__created_at")
                .values_list(field, "version_id")
            )
            for name, version_id in rows:
                users.setdefault(name, version_id)
    kept: dict[str, int] = {}
    for name, version_id in users.items():
        owner = _pack_owner(name)
        if owner is None or owner not in owners:
            kept[name] = 0  # counted by whoever stored it
            continue
        try:
            size = default_storage.size(name)
        except OSError:
            continue
        DatasetVersion.objects.for_organization(organization_id).filter(pk=version_id).update(
            stored_bytes=F("stored_bytes") + size
        )
        kept[name] = size
    return kept


def _pack_owner(name: str) -> str | None:
    """The id of the version whose ingestion wrote the pack `name`, or None for other files."""
    parts = name.split("/")
    if len(parts) == 5 and parts[0] == "orgs" and parts[2] == "packs":
        return parts[3]
    return None


def _delete_files(
    organization_id: Any, dataset_id: Any, versions: list[DatasetVersion], images: Iterable[str]
) -> None:
    storage = default_storage
    for name in images:
        _delete(storage, name)
    _delete_tree(storage, f"orgs/{organization_id}/datasets/{dataset_id}")
    for version in versions:
        folder = f"orgs/{organization_id}/packs/{version.pk}"
        if _is_empty(storage, folder):
            _delete_tree(storage, folder)


def _delete(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except OSError:
        logger.warning("could not delete %s", name, exc_info=True)


def _is_empty(storage: Storage, folder: str) -> bool:
    try:
        folders, files = storage.listdir(folder)
    except (OSError, NotImplementedError):
        return True
    return not files and all(_is_empty(storage, f"{folder}/{sub}") for sub in folders)


def _delete_tree(storage: Storage, folder: str) -> None:
    if isinstance(storage, FileSystemStorage):
        shutil.rmtree(storage.path(folder), ignore_errors=True)
        return
    try:
        folders, files = storage.listdir(folder)
    except (OSError, NotImplementedError):
        return
    for name in files:
        _delete(storage, f"{folder}/{name}")
    for sub in folders:
        _delete_tree(storage, f"{folder}/{sub}")
