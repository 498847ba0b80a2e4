"""The item rows an ingestion writes: plain values, cheap to make by the thousand, pointed at
the stored copy of an image the organization already holds, and inserted a thousand at a time.
"""

from __future__ import annotations

import operator
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.utils import timezone

from apps.datasets.models import DatasetItem, DatasetVersion


@dataclass(slots=True)
class ItemRow:
    """A DatasetItem row to be: plain values, cheap to make by the thousand."""

    file: str
    file_offset: int | None
    file_length: int | None
    thumbnail: str
    thumbnail_offset: int | None
    thumbnail_length: int | None
    original_name: str
    label: str
    split: str
    width: int
    height: int
    sha256: str
    original_format: str
    original_bytes: int


ROW_FIELDS = tuple(ItemRow.__slots__)
#: where a row's image and thumbnail are stored
LOCATION: tuple[str, ...] = (
    "file",
    "file_offset",
    "file_length",
    "thumbnail",
    "thumbnail_offset",
    "thumbnail_length",
)


def location(row: ItemRow) -> tuple:
    return tuple(getattr(row, name) for name in LOCATION)


def relocate(row: ItemRow, place: tuple) -> None:
    for name, value in zip(LOCATION, place, strict=True):
        setattr(row, name, value)


def reuse_stored(
    rows: list[ItemRow], *, new: set[str], version: DatasetVersion
) -> dict[str, tuple[Any, tuple]]:
    """Point the rows of `new` images at the stored copy of an image the organization already
    holds (in another version or dataset): uploading the same pictures again, in a new dataset
    say, then stores nothing new. Answers, for each image reused, the version whose copy the
    row now points at and the row's own location; confirm_reused() checks those copies are
    still there when the rows are written.
    """
    others = DatasetItem.objects.for_organization(version.organization_id).exclude(version=version)
    # No query per chunk when there is nothing to share: the organization's first images.
    digests = sorted(new) if others.exists() else []
    found: dict[str, tuple] = {}
    for start in range(0, len(digests), 500):
        chunk = digests[start : start + 500]
        stored = (
            others.filter(sha256__in=chunk)
            .order_by("created_at")
            .values_list("sha256", "version_id", *LOCATION)
        )
        for digest, version_id, *place in stored:
            found.setdefault(digest, (version_id, tuple(place)))
    reused: dict[str, tuple[Any, tuple]] = {}
    for row in rows:
        if row.sha256 in found and row.sha256 in new:
            version_id, place = found[row.sha256]
            reused[row.sha256] = (version_id, location(row))
            relocate(row, place)
    return reused


def confirm_reused(
    rows: list[ItemRow], reused: dict[str, tuple[Any, tuple]], *, organization_id: Any
) -> None:
    """Lock the versions whose stored images the rows reuse, inside the transaction that
    writes the rows. A dataset deleted in the meantime took those files with it (see
    apps.datasets.deletion, which locks its versions the same way, and keeps what rows of
    other datasets point at): its rows go back to their own copy, and leave `reused`."""
    sources = {version_id for version_id, _own in reused.values()}
    if not sources:
        return
    alive = set(
        DatasetVersion.objects.for_organization(organization_id)
        .select_for_update()
        .filter(pk__in=sources)
        .values_list("pk", flat=True)
    )
    for row in rows:
        entry = reused.get(row.sha256)
        if entry is not None and entry[0] not in alive:
            relocate(row, entry[1])
            del reused[row.sha256]


def insert_rows(version: DatasetVersion, rows: list[ItemRow]) -> None:
    """INSERT the version's item rows, a thousand per executemany.

    bulk_create runs each field's Python hooks on every row (file descriptors, auto_now,
    UUID conversion): about 200 us a row here, as long as decoding a small image takes.
    These values are plain already; the timestamps and keys are converted by their own
    fields, once, and the ids made in the form UUIDField gives this database.
    """
    meta = DatasetItem._meta
    connection = connections[router.db_for_write(DatasetItem)]
    fields = {f.attname: f for f in meta.concrete_fields}
    names = ("id", "created_at", "updated_at", "organization_id", "version_id", *ROW_FIELDS)
    if set(names) != set(fields):
        raise RuntimeError(f"DatasetItem has fields {sorted(fields)}; update ItemRow")
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - names from the model
        quote(meta.db_table),
        ", ".join(quote(fields[name].column) for name in names),
        ", ".join(["%s"] * len(names)),
    )
    now = fields["created_at"].get_db_prep_save(timezone.now(), connection)
    owner = (
        fields["organization_id"].get_db_prep_save(version.organization_id, connection),
        fields["version_id"].get_db_prep_save(version.pk, connection),
    )
    # What UUIDField.get_db_prep_save makes of a new UUID, without its hooks per row.
    new_id = uuid.uuid4 if connection.features.has_native_uuid_field else _uuid4_hex
    values = operator.attrgetter(*ROW_FIELDS)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            cursor.executemany(
                sql,
                [(new_id(), now, now, *owner, *values(row)) for row in rows[start : start + 1000]],
            )


def _uuid4_hex() -> str:
    return uuid.uuid4().hex
