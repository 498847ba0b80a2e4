"""New versions of an image dataset from an earlier one: additions, removals and relabels.

Versions are immutable. A derived version is the earlier one's items plus added images (loose
files with labels, or an archive of class folders / with a manifest), minus removed items, with
some items relabelled. The request is validated here, synchronously; the work (copying the
earlier rows, decoding only the new images, splits, health) is an ingestion job on a worker,
see apps.datasets.ingest. The earlier version is never modified.
"""

from __future__ import annotations

import posixpath
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max

from apps.audit.services import audit_record
from apps.core.errors import InvalidInput, PayloadTooLarge, QuotaExceeded
from apps.core.job_registry import job_enqueue_on_commit
from apps.core.jobs import JobStatus
from apps.core.text import human_size
from apps.datasets import archives
from apps.datasets.jobs import INGEST
from apps.datasets.models import Dataset, DatasetItem, DatasetKind, DatasetVersion
from apps.datasets.services import organization_storage_used
from apps.quotas.selectors import organization_limits
from workers.ml.images import IMAGE_EXTENSIONS

#: how many unknown or ambiguous names a message lists before "and N more"
_LISTED = 10


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _file_name(upload: UploadedFile) -> str:
    name = posixpath.basename((upload.name or "").replace("\\", "/")).strip()
    return unicodedata.normalize("NFC", name)[:255] or "image"


def _clean_label(value: Any, *, what: str) -> str:
    label = unicodedata.normalize("NFC", str(value or "")).strip()
    if not label:
        raise InvalidInput(f"Give {what} a label.", field="labels")
    if len(label) > 200:
        raise InvalidInput(f"The label of {what} is too long: 200 characters at most.")
    return label


def _resolve_items(
    base: DatasetVersion, keys: Iterable[str], *, field: str
) -> dict[str, DatasetItem]:
    """{key: item of `base`} for item ids or original names; unknown ones are refused."""
    keys = [str(k).strip() for k in keys]
    if not keys:
        return {}
    ids = []
    for key in keys:
        try:
            ids.append(uuid.UUID(key))
        except ValueError:
            pass
    items = DatasetItem.objects.for_organization(base.organization_id).filter(version=base)
    by_id = {str(item.pk): item for item in items.filter(pk__in=ids)}
    names = [k for k in keys if k not in by_id]
    by_name: dict[str, list[DatasetItem]] = {}
    for item in items.filter(original_name__in=names):
        by_name.setdefault(item.original_name, []).append(item)
    unknown = [k for k in keys if k not in by_id and k not in by_name]
    if unknown:
        raise InvalidInput(
            f"Version {base.number} of '{base.dataset.name}' has no item {_listing(unknown)}. "
            "Name items by their id or their file name in the upload (original_name).",
            field=field,
        )
    ambiguous = [k for k in keys if k not in by_id and len(by_name[k]) > 1]
    if ambiguous:
        raise InvalidInput(
            f"More than one item of version {base.number} is named {_listing(ambiguous)}; "
            "name those by their item id instead.",
            field=field,
        )
    return {k: by_id[k] if k in by_id else by_name[k][0] for k in keys}


def _check_sizes(*, organization: Any, uploads: list[UploadedFile]) -> int:
    total = sum(upload.size for upload in uploads)
    limit = settings.LEPTON_MAX_UPLOAD_BYTES
    if total > limit:
        raise PayloadTooLarge(
            f"The files add up to {human_size(total)}; one request may carry {human_size(limit)}. "
            "Add them in several requests.",
            field="file",
        )
    used = organization_storage_used(organization=organization)
    quota = organization_limits(organization).storage_bytes
    if quota is not None and used + total > quota:
        raise QuotaExceeded(
            f"These files would take your organization's storage to "
            f"{(used + total) / 1024**3:.2f} GB, over its quota of "
            f"{quota / 1024**3:.2f} GB. Delete datasets you no longer "
            "need or ask a platform admin for a larger quota.",
            field="file",
        )
    return total


def dataset_version_derive(
    *,
    base: DatasetVersion,
    user: Any,
    add_images: Sequence[UploadedFile] = (),
    add_labels: dict[str, str] | None = None,
    label: str | None = None,
    add_archive: UploadedFile | None = None,
    remove: Sequence[str] = (),
    relabel: dict[str, str] | None = None,
) -> DatasetVersion:
    """Queue a new version of `base`'s dataset: its items + additions - removals + relabels.

    Loose images need a label: `add_labels` ({file name: label}) or one `label` for all of
    them. `add_archive` is a zip or tar of class folders or with a manifest, as at upload.
    `remove` and `relabel` ({item: new label}) name items of `base` by id or original name.
    Raises InvalidInput (unknown items, missing labels, base not ready, nothing to do),
    PayloadTooLarge (too many files, too large) or QuotaExceeded; nothing is stored then.
    """
    add_images = list(add_images or ())
    relabel = dict(relabel or {})
    remove = [str(key) for key in (remove or ())]
    _check_derivable(base, files=len(add_images) + (add_archive is not None))
    if not (add_images or add_archive is not None or remove or relabel):
        raise InvalidInput(
            "Nothing to change: add images or an archive, remove items or relabel them.",
        )
    added = _labelled_images(add_images, add_labels=add_labels, label=label)
    remove_ids, relabel_ids = _item_changes(base, remove=remove, relabel=relabel)
    if len(remove_ids) >= base.item_count and not (add_images or add_archive is not None):
        raise InvalidInput(
            "The new version would hold no images: add some, or remove fewer items.",
            field="remove",
        )
    uploads = [upload for upload, _name, _label in added]
    archive_kind = ""
    if add_archive is not None:
        uploads.append(add_archive)
        if add_archive.size == 0:
            raise InvalidInput(f"'{add_archive.name}' is empty.", field="file")
    total = _check_sizes(organization=base.organization, uploads=uploads)
    if add_archive is not None:
        archive_kind = archives.inspect_archive(
            add_archive.file,
            max_entries=settings.LEPTON_MAX_ARCHIVE_ENTRIES,
            source_name=add_archive.name,
        )
    with transaction.atomic():
        version = _version_row(base, archive=add_archive, source_size=total)
        _store_additions(version, added, archive=add_archive, archive_kind=archive_kind)
        version.changes = {
            "base": base.number,
            "added": len(added),
            "removed": len(remove_ids),
            "relabelled": len(relabel_ids),
            "archive": add_archive.name if add_archive is not None else "",
            "images": version.changes["images"],
            "remove": remove_ids,
            "relabel": relabel_ids,
        }
        version.save(update_fields=["source", "changes"])
        audit_record(
            organization=base.organization,
            actor=user,
            action="dataset.version.derive",
            target=version,
            data={k: version.changes[k] for k in ("base", "added", "removed", "relabelled")},
        )
        job_enqueue_on_commit(INGEST, version.pk)
    return version


def _check_derivable(base: DatasetVersion, *, files: int) -> None:
    """Refuse a derivation that cannot start: not images, base not ready, too many files."""
    dataset = base.dataset
    if dataset.kind != DatasetKind.IMAGE:
        raise InvalidInput("Only image datasets take added images, removals and relabels.")
    if not base.is_ready:
        raise InvalidInput(
            f"Version {base.number} of '{dataset.name}' is not ready (status: {base.status}); "
            "wait for its ingestion to finish, or start from a ready version.",
            field="base",
        )
    if files > settings.LEPTON_MAX_FILES_PER_REQUEST:
        raise PayloadTooLarge(
            f"This request carries {files} files; the limit is "
            f"{settings.LEPTON_MAX_FILES_PER_REQUEST} per request. Send them in several "
            "requests, or pack them into one zip or tar archive.",
            field="images",
        )


def _labelled_images(
    add_images: list[UploadedFile], *, add_labels: dict[str, str] | None, label: str | None
) -> list[tuple[UploadedFile, str, str]]:
    """Loose images as (upload, name, label): a label each, an image extension, a size within
    the limits; all missing labels are named in one error."""
    labels = {unicodedata.normalize("NFC", k): v for k, v in (add_labels or {}).items()}
    missing, added = [], []
    for upload in add_images:
        name = _file_name(upload)
        extension = posixpath.splitext(name)[1].lower()
        if extension not in IMAGE_EXTENSIONS:
            raise InvalidInput(
                f"'{name}' is not an image file (extension '{extension}'); add "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))} files.",
                field="images",
            )
        if upload.size == 0:
            raise InvalidInput(f"'{name}' is empty.", field="images")
        if upload.size > settings.LEPTON_MAX_IMAGE_BYTES:
            raise PayloadTooLarge(
                f"'{name}' is {human_size(upload.size)}; one image may be "
                f"{human_size(settings.LEPTON_MAX_IMAGE_BYTES)}.",
                field="images",
            )
        given = labels.get(name, labels.get(upload.name or "", label))
        if given is None or not str(given).strip():
            missing.append(name)
            continue
        added.append((upload, name, _clean_label(given, what=f"'{name}'")))
    if missing:
        raise InvalidInput(
            f"No label for {_listing(missing)}. Give each added image a label (add_labels: "
            "{file name: label}) or one label for all of them (label).",
            field="labels",
        )
    return added


def _item_changes(
    base: DatasetVersion, *, remove: list[str], relabel: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """(ids removed, {id: new label}) of `base`'s items named by id or original name."""
    removed = _resolve_items(base, remove, field="remove")
    relabelled = _resolve_items(base, list(relabel), field="relabel")
    removed_ids = {str(item.pk) for item in removed.values()}
    both = sorted(removed_ids & {str(item.pk) for item in relabelled.values()})
    if both:
        raise InvalidInput(
            f"Items {_listing(both)} are both removed and relabelled; do one or the other.",
            field="relabel",
        )
    relabel_ids = {
        str(item.pk): _clean_label(relabel[key], what=f"'{item.original_name}'")
        for key, item in relabelled.items()
    }
    return sorted(removed_ids), relabel_ids


def _version_row(
    base: DatasetVersion, *, archive: UploadedFile | None, source_size: int
) -> DatasetVersion:
    """The queued row of the next version of `base`'s dataset (inside the caller's atomic)."""
    dataset, organization = base.dataset, base.organization
    # Serialises concurrent derivations of one dataset (PostgreSQL; SQLite's write
    # transactions are serial anyway), so version numbers never collide.
    Dataset.objects.for_organization(organization).select_for_update().filter(pk=dataset.pk).first()
    number = (
        DatasetVersion.objects.for_organization(organization)
        .filter(dataset=dataset)
        .aggregate(n=Max("number"))["n"]
        or 0
    ) + 1
    return DatasetVersion.objects.create(
        organization=organization,
        dataset=dataset,
        number=number,
        parent=base,
        source_kind="derived",
        source_name=(archive.name if archive is not None else "")[:255],
        source_size=source_size,
        split_source=base.split_source,
        split_seed=base.split_seed,
        split_ratios=base.split_ratios,
        status=JobStatus.QUEUED,
        message="Waiting for a worker",
    )


def _store_additions(
    version: DatasetVersion,
    added: list[tuple[UploadedFile, str, str]],
    *,
    archive: UploadedFile | None,
    archive_kind: str,
) -> None:
    """Store the added images and archive under names of ours; the uploaded names are kept
    as data (version.changes["images"]), never as paths."""
    folder = f"orgs/{version.organization_id}/datasets/{version.dataset_id}/v{version.number}"
    images = []
    for index, (upload, name, given) in enumerate(added):
        extension = posixpath.splitext(name)[1].lower()
        upload.seek(0)
        path = version.source.storage.save(f"{folder}/added/{index:05d}{extension}", upload)
        images.append({"file": path, "name": name, "label": given})
    if archive is not None:
        archive.file.seek(0)
        extension = "tar" if archive_kind == "tar" else "zip"
        version.source.save(f"{folder}/source.{extension}", archive, save=False)
    version.changes = {"images": images}
