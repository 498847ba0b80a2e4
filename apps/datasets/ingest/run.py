"""One ingestion of an image version, from start to finish (see apps.datasets.ingest)."""

from __future__ import annotations

import contextlib
import gc
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.core.errors import InvalidInput, QuotaExceeded
from apps.core.jobs import JobStatus, ProgressReporter, job_finish
from apps.datasets import archives
from apps.datasets.canonical import (
    Canonical,
    Destination,
    OverAllowance,
    Stored,
    canonicalize_batch,
)
from apps.datasets.health import health_report
from apps.datasets.ingest import rows as item_rows
from apps.datasets.ingest import storing
from apps.datasets.ingest.decoding import LocalZip, Payload, decode_images
from apps.datasets.ingest.quota import IngestionQuota, forget_stored
from apps.datasets.ingest.rows import ItemRow
from apps.datasets.ingest.sources import (
    SourceKey,
    archive_sources,
    chain,
    loose_sources,
    open_source,
)
from apps.datasets.ingest.splits import assign_splits, split_ratios
from apps.datasets.models import DatasetItem, DatasetVersion
from workers.ml.cells import SPLITS


class IngestionStopped(InvalidInput):
    """The version stopped running under the ingestion (cancelled when its organization was
    suspended): nothing more is written and what it stored is removed (ingest_images)."""

    def __init__(self) -> None:
        super().__init__(_("The ingestion was stopped before it finished; nothing was kept."))


def _check_running(reporter: ProgressReporter) -> None:
    # A progress write changes no row once the version is no longer running.
    if reporter.last_rows == 0:
        raise IngestionStopped()


@dataclass
class _Copy:
    """Where an image came from, with the split its manifest asked for (if any)."""

    path: str
    split: str | None


@dataclass
class Ingestion:
    """What one ingestion holds while it runs: the rows to be, what it skipped, the images it
    saw and where it stored them."""

    version: DatasetVersion
    reporter: ProgressReporter
    rows: list[ItemRow] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: content hash -> the row kept for it
    kept: dict[str, ItemRow] = field(default_factory=dict)
    #: content hash -> every copy seen, the kept one first
    copies: dict[str, list[_Copy]] = field(default_factory=dict)
    new: set[str] = field(default_factory=set)  # hashes of images added by this version
    #: sha -> bytes of the whole files stored for it (object stores: see storing.store_once)
    new_bytes: dict[str, int] = field(default_factory=dict)
    #: the whole files this ingestion created (deleted if it fails)
    created_files: list[str] = field(default_factory=list)
    #: the rows are committed: nothing is deleted any more, whatever happens next
    committed: bool = False
    #: storage name of each pack file this ingestion wrote -> its size
    packs: dict[str, int] = field(default_factory=dict)
    #: sha -> (the version whose stored copy the row points at, the row's own location)
    reused: dict[str, tuple[Any, tuple]] = field(default_factory=dict)
    done: int = 0
    total: int = 0
    #: where the decoding processes write their packs, on local storage; on an object store
    #: (S3) they send the bytes back and this process stores each image whole
    destination: Destination | None = None
    #: the storage quota: what this ingestion may still write (see apps.datasets.ingest.quota)
    quota: IngestionQuota = field(init=False)

    def __post_init__(self) -> None:
        organization_id = self.version.organization_id
        self._blobs = storing.blobs_folder(organization_id)
        self._thumbs = storing.thumbs_folder(organization_id)
        self.packs_folder = storing.packs_folder(organization_id, self.version.pk)
        self.destination = storing.pack_destination(self.version)
        self.quota = IngestionQuota(self.version)

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})

    # -- the parent's items (derived versions) --------------------------------------------------

    def copy_parent(self) -> None:
        """The parent's rows, same stored images, minus removals, relabels applied."""
        changes = self.version.changes or {}
        removed = {str(pk) for pk in changes.get("remove", [])}
        relabel = {str(pk): label for pk, label in (changes.get("relabel") or {}).items()}
        parent_items = (
            DatasetItem.objects.for_organization(self.version.organization_id)
            .filter(version=self.version.parent_id)
            .order_by("label", "original_name")
            .values_list("pk", *item_rows.ROW_FIELDS)
        )
        for pk, *values in parent_items:
            if str(pk) in removed:
                continue
            row = ItemRow(*values)
            row.label = relabel.get(str(pk), row.label)
            self.rows.append(row)
            self.kept.setdefault(row.sha256, row)
            self.copies.setdefault(row.sha256, [_Copy(row.original_name, row.split)])

    # -- new images --------------------------------------------------------------------------

    def add(self, path: str, label: str, split: str | None, size: int, result: Any) -> None:
        """Count one decoded source: a new row, a duplicate, or a file skipped with its reason."""
        self.done += 1
        if self.done % 25 == 0 and self.reporter.due():  # the reporter throttles writes
            self.reporter.report(
                progress=0.05 + 0.85 * self.done / max(1, self.total),
                message=_("Decoded %(done)d of %(total)d images")
                % {"done": self.done, "total": self.total},
                stored_bytes=self.quota.stored_bytes(),
            )
            _check_running(self.reporter)
        if isinstance(result, str):
            self.skip(path, result)
            return
        digest = result.sha256
        pack = None
        if isinstance(result, Stored):  # written by the process that decoded it
            assert self.destination is not None
            pack = f"{self.packs_folder}/{self.destination.pack_name(result.pack)}"
            self.packs[pack] = self.packs.get(pack, 0) + result.written
        self.copies.setdefault(digest, []).append(_Copy(path, split))
        if digest in self.kept:
            self.skip(path, f"exact duplicate of {self.kept[digest].original_name}")
            return
        place = self._packed(pack, result) if pack is not None else self._store_whole(result)
        row = ItemRow(
            **place,
            original_name=path[:500],
            label=label[:200],
            split=split or "",
            width=result.width,
            height=result.height,
            sha256=digest,
            original_format=result.original_format[:16],
            original_bytes=min(size, 2**31 - 1),
        )
        self.rows.append(row)
        self.kept[digest] = row
        self.new.add(digest)

    @staticmethod
    def _packed(pack: str, result: Stored) -> dict[str, Any]:
        """Where an image written to a pack lies (rows.LOCATION); an image of at most the
        thumbnail size is its own thumbnail."""
        place = {"file": pack, "file_offset": result.png_offset, "file_length": result.png_bytes}
        if result.thumbnail_offset is None:
            return place | {
                "thumbnail": pack,
                "thumbnail_offset": result.png_offset,
                "thumbnail_length": result.png_bytes,
            }
        return place | {
            "thumbnail": pack,
            "thumbnail_offset": result.thumbnail_offset,
            "thumbnail_length": result.thumbnail_bytes,
        }

    def _store_whole(self, result: Canonical) -> dict[str, Any]:
        """Store a decoded image as whole content-addressed files (object stores); where.

        Raises QuotaExceeded when its bytes do not fit the storage quota."""
        digest = result.sha256
        size = len(result.png) + len(result.thumbnail or b"")
        if not self.quota.allowance.reserve(size):
            raise self.quota.error()
        file = thumbnail = f"{self._blobs}/{digest[:2]}/{digest}.png"
        if storing.store_once(file, result.png):
            self.created_files.append(file)
        if result.thumbnail is not None:
            thumbnail = f"{self._thumbs}/{digest}.webp"
            if storing.store_once(thumbnail, result.thumbnail):
                self.created_files.append(thumbnail)
        self.new_bytes[digest] = size
        return dict(zip(item_rows.LOCATION, (file, None, None, thumbnail, None, None), strict=True))

    def decode(
        self,
        sources: Iterable[tuple[SourceKey, Payload]],
        *,
        reader: archives.ArchiveReader | None = None,
        local_zip: LocalZip | None = None,
    ) -> None:
        """Decode and store the sources' images, adding a row for each new one.

        Entries of the archive that the decoding processes read themselves (their key holds
        the Entry) are counted against the archive's budget here, in order, as reading them
        here would; those they left (not plain) are read here with zipfile, which says what is
        wrong with them, and decoded in this process.
        """
        processes = max(1, settings.LEPTON_INGEST_PROCESSES)
        max_pixels = settings.LEPTON_MAX_DATASET_IMAGE_PIXELS
        budget = reader.budget() if reader is not None else None
        decoded = decode_images(
            sources,
            processes=processes,
            expected=self.total,
            destination=self.destination,
            local_zip=local_zip,
            max_pixels=max_pixels,
            allowance=self.quota.allowance,
        )
        # Closed on the way out, an exception included: the decoding processes are joined
        # before anything they wrote is deleted.
        with contextlib.closing(decoded):
            for key, size, result in decoded:
                if isinstance(result, OverAllowance):
                    raise self.quota.error()
                self._decoded(key, size, result, reader=reader, budget=budget)

    def _decoded(
        self,
        key: SourceKey,
        size: int,
        result: Any,
        *,
        reader: archives.ArchiveReader | None,
        budget: Any,
    ) -> None:
        """One decoded source: entries of the archive the decoding processes did not read
        (not plain) are read here, then counted against the archive's budget, in order."""
        path, label, split, entry = key
        if entry is not None and reader is not None and budget is not None:
            if result is None:
                read = reader.read_entry(entry, budget=budget)
                if isinstance(read, archives.Skipped):
                    self.skip(read.path, read.reason)
                    return
                size = len(read)
                # stored whole, by add()
                max_pixels = settings.LEPTON_MAX_DATASET_IMAGE_PIXELS
                result = canonicalize_batch([read], max_pixels=max_pixels)[0]
            else:
                budget.add(size)
        self.add(path, label, split, size, result)

    # -- splits, findings ---------------------------------------------------------------------

    def assign_splits(self) -> dict[str, float]:
        ratios = split_ratios(self.version.split_ratios)
        existing: dict[str, dict[str, int]] = defaultdict(Counter)
        unassigned: dict[str, str] = {}
        for row in self.rows:
            if row.split:
                existing[row.label][row.split] += 1
            else:
                unassigned[row.sha256] = row.label
        splits = assign_splits(
            unassigned, seed=self.version.split_seed, ratios=ratios, existing=existing
        )
        for row in self.rows:
            if not row.split:
                row.split = splits[row.sha256]
        return ratios

    def class_counts(self) -> dict[str, dict[str, int]]:
        """{label: {split: n, "total": n}} of the rows."""
        counts: dict[str, dict[str, int]] = {}
        for row in self.rows:
            per_class = counts.setdefault(row.label, {s: 0 for s in SPLITS} | {"total": 0})
            per_class[row.split] += 1
            per_class["total"] += 1
        return counts

    def findings(self) -> tuple[list[dict], list[dict]]:
        """Duplicate groups, and those a manifest spread over more than one split (leakage)."""
        duplicates, leakage = [], []
        for digest, copies in self.copies.items():
            if len(copies) < 2:
                continue
            paths = [copy.path for copy in copies]
            duplicates.append({"sha256": digest, "paths": paths})
            splits = {self.kept[digest].split} | {c.split for c in copies[1:] if c.split}
            if len(splits) > 1:
                ordered = [s for s in SPLITS if s in splits]
                leakage.append({"sha256": digest, "paths": paths, "splits": ordered})
        return duplicates, leakage

    # -- stored images ------------------------------------------------------------------------

    def reuse_stored(self) -> None:
        """Point the new rows at the stored copy of an image the organization already holds
        (see rows.reuse_stored); the packs left with nothing in use are deleted once the rows
        are written."""
        self.reused = item_rows.reuse_stored(self.rows, new=self.new, version=self.version)
        for digest in self.reused:
            self.new_bytes.pop(digest, None)

    def confirm_reused(self) -> None:
        """Inside the transaction that writes the rows: see rows.confirm_reused."""
        item_rows.confirm_reused(
            self.rows, self.reused, organization_id=self.version.organization_id
        )

    def unused_packs(self) -> list[str]:
        """This ingestion's packs that no row points into (their images are duplicates, or
        stored elsewhere already)."""
        live = {row.file for row in self.rows} | {row.thumbnail for row in self.rows}
        return [name for name in self.packs if name not in live]

    def stored_bytes(self, unused: list[str]) -> int:
        """Bytes this version added to storage: the packs it keeps, all but `unused`
        (duplicates in them included: they were written), and the whole files of images the
        organization held nowhere else."""
        kept = sum(size for name, size in self.packs.items() if name not in unused)
        return kept + sum(self.new_bytes.values())


def ingest_images(version: DatasetVersion) -> None:
    """Ingest an image version; raises ServiceError when nothing usable is in it."""
    with _collections_of_new_objects_only():
        DatasetItem.objects.for_organization(version.organization_id).filter(
            version=version
        ).delete()  # a re-run starts over
        reporter = ProgressReporter(version)
        reporter.report(force=True, message=_("Reading the archive"), progress=0.0)
        run = Ingestion(version=version, reporter=reporter)
        storing.remove_packs(run.destination)  # what an interrupted attempt wrote
        try:
            _ingest_into(version, run)
        except BaseException as exc:
            if not run.committed:  # no row points into what it stored: nothing is kept
                storing.remove_packs(run.destination)
                storing.delete_files(run.created_files)
                forget_stored(version, upload_too=isinstance(exc, QuotaExceeded))
            raise


@contextlib.contextmanager
def _collections_of_new_objects_only() -> Iterator[None]:
    """Python's full garbage collections walk every object of the process, and a worker holds
    hundreds of thousands (Django, the ORM, numpy) before an ingestion makes its thousands of
    rows, which set one off: 80 ms here, once or twice an ingestion. While it runs, the older
    objects are set aside (gc.freeze) and collections walk only what it made."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _ingest_into(version: DatasetVersion, run: Ingestion) -> None:
    derived = version.parent_id is not None
    if derived:
        run.copy_parent()
    changes = dict(version.changes or {})
    split_source = _decode_new_images(version, run, list(changes.get("images") or []))
    if not run.rows:
        # The message sends the user to the skipped files; keep them on the failed version.
        DatasetVersion.objects.for_organization(version.organization_id).filter(
            pk=version.pk
        ).update(skipped=run.skipped)
        if derived:
            raise InvalidInput(
                "The new version would hold no images: nothing is left of the earlier version "
                "and none of the added images could be read; see the skipped files for reasons."
            )
        raise InvalidInput(
            "No readable image was found in the archive; see the skipped files for reasons."
        )
    run.reporter.report(force=True, message=_("Assigning splits"), progress=0.92)
    _check_running(run.reporter)
    run.reuse_stored()
    ratios = run.assign_splits()
    if derived:
        changes["added"] = len(run.new)
    with transaction.atomic():
        # Locked until the rows are in: a cancellation (a suspension) either lands before, and
        # nothing is kept, or waits for the version to be ready.
        still_running = (
            DatasetVersion.objects.for_organization(version.organization_id)
            .select_for_update()
            .filter(pk=version.pk, status=JobStatus.RUNNING)
            .exists()
        )
        if not still_running:
            raise IngestionStopped()
        run.confirm_reused()
        unused = run.unused_packs()
        item_rows.insert_rows(version, run.rows)
        _finish(
            version, run, split_source=split_source, ratios=ratios, changes=changes, unused=unused
        )
    run.committed = True
    storing.delete_packs(unused)  # the rows pointing elsewhere are committed


def _decode_new_images(version: DatasetVersion, run: Ingestion, loose: list[dict]) -> str:
    """Decode the archive's images and the loose ones added; answers where the splits come
    from ("manifest" when the archive's manifest has a split column, else the version's)."""
    split_source = version.split_source or "auto"
    if not version.source:
        run.total = len(loose)
        run.decode(loose_sources(loose, run.skip))
        return split_source
    with open_source(version) as (fileobj, local_path):
        limits = archives.Limits.from_settings()
        reader = archives.ArchiveReader(fileobj, limits=limits, source_name=version.source_name)
        scan = reader.scan()
        run.skipped.extend(s.as_dict() for s in scan.skipped)
        if scan.manifest_has_split and version.parent_id is None:
            split_source = "manifest"
        run.total = len(scan.entries) + len(loose)
        run.reporter.report(force=True, message=_("Decoding images"), progress=0.05)
        local_zip = None
        places = None
        if local_path is not None and run.destination is not None:
            places = reader.zip_places(scan)  # None for a tar: read here, as a stream
            if places is not None:
                local_zip = LocalZip(local_path, limits.max_entry_bytes)
        sources = chain(
            archive_sources(reader, scan, places, run.skip), loose_sources(loose, run.skip)
        )
        run.decode(sources, reader=reader, local_zip=local_zip)
    return split_source


def _finish(
    version: DatasetVersion,
    run: Ingestion,
    *,
    split_source: str,
    ratios: dict[str, float],
    changes: dict[str, Any],
    unused: list[str],
) -> None:
    """Mark the version ready with its counts and health report (inside the transaction that
    wrote its rows)."""
    counts = run.class_counts()
    duplicates, leakage = run.findings()
    version.skipped = run.skipped
    version.split_source = split_source
    health = health_report(
        version,
        duplicates=duplicates,
        leakage=leakage,
        items=[
            (row.label, row.split, row.width, row.height, row.original_format) for row in run.rows
        ],
    )
    message = ngettext(
        "Ready: %(n)d image in %(c)d classes",
        "Ready: %(n)d images in %(c)d classes",
        len(run.rows),
    ) % {"n": len(run.rows), "c": len(counts)}
    if run.skipped:
        message += ngettext(", %(n)d file skipped", ", %(n)d files skipped", len(run.skipped)) % {
            "n": len(run.skipped)
        }
    job_finish(
        version,
        status=JobStatus.SUCCEEDED,
        message=message,
        item_count=len(run.rows),
        class_counts=counts,
        skipped=run.skipped,
        stored_bytes=run.stored_bytes(unused),
        health=health,
        split_source=split_source,
        split_ratios=ratios if split_source == "auto" else version.split_ratios,
        changes=changes,
    )
