"""Image ingestion: an uploaded archive (or a derived version's changes) into canonical items.

Runs on a worker (cpu queue) inside the version's tenant scope; see
apps.datasets.services.dataset_version_ingest. The steps:

1. start over: an interrupted earlier attempt's item rows and pack files are deleted;
2. a derived version copies its parent's rows (same stored images), minus removals, with
   relabels applied;
3. new images are read from the archive (apps.datasets.archives) and the stored loose files,
   and decoded in LEPTON_INGEST_PROCESSES worker processes (apps.datasets.canonical: no ORM)
   into a canonical PNG, with a WebP thumbnail when the image is larger than a thumbnail. On
   local storage the worker processes write them themselves, one pack file per batch of
   images at orgs/<org>/packs/<version>/a<attempt>-<batch>.pack (creating thousands of small
   files costs the kernel more than decoding them), and send back only what the rows need:
   where each image lies in its pack. On an object store they send the bytes and this
   process stores each image whole, once per organization, at
   orgs/<org>/blobs/<sha[:2]>/<sha>.png (thumbnail orgs/<org>/thumbs/<sha>.webp);
4. exact duplicates are dropped (the first copy stays); an image the organization already
   holds in another version points at that copy, and a pack left with nothing in use is
   deleted; splits are assigned (stratified from the version's ratios and seed, or the
   manifest's split column; existing items keep theirs);
5. the rows, counts and the health report (apps.datasets.health) are written in one transaction.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import mmap
import multiprocessing
import multiprocessing.context
import operator
import os
import random
import shutil
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.process import AuthenticationString
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connections, router, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.core.errors import InvalidInput
from apps.core.jobs import JobStatus, ProgressReporter, job_finish
from apps.core.text import human_size
from apps.datasets import archives
from apps.datasets.canonical import (
    Canonical,
    Destination,
    Stored,
    canonicalize_batch,
    store_batch,
    store_zip_entries,
    write_file_once,
)
from apps.datasets.health import health_report
from apps.datasets.models import DatasetItem, DatasetVersion, Split

logger = logging.getLogger(__name__)

DEFAULT_RATIOS: dict[str, float] = {"train": 0.7, "validation": 0.15, "test": 0.15}
#: shares of each class held out for validation and for the final test, unless the version says
VALIDATION_SHARE = DEFAULT_RATIOS["validation"]
TEST_SHARE = DEFAULT_RATIOS["test"]
SPLIT_SEED = 0
#: below this many new images, starting worker processes costs more than it saves
PARALLEL_MIN_IMAGES = 64
#: a unit of work sent to a worker process: this many images or this many bytes
BATCH_IMAGES = 32
BATCH_BYTES = 4 * 1024 * 1024
SPLITS = (Split.TRAIN, Split.VALIDATION, Split.TEST)


# --- splits -------------------------------------------------------------------------------------


def split_ratios(raw: Any) -> dict[str, float]:
    """A version's split ratios, or the default 70/15/15; refuses shares that make no sense."""
    if not raw:
        return dict(DEFAULT_RATIOS)
    try:
        ratios = {name: float(raw.get(name, 0.0)) for name in SPLITS}
    except (AttributeError, TypeError, ValueError):
        ratios = {}
    if (
        set(raw) - set(SPLITS)
        or not ratios
        or any(not math.isfinite(v) or v < 0 for v in ratios.values())
        or ratios["train"] <= 0
        or abs(sum(ratios.values()) - 1) > 1e-6
    ):
        raise InvalidInput(
            f"Split ratios must give train, validation and test shares that add up to 1, with "
            f"a share for train; got {raw}.",
            field="split_ratios",
        )
    return ratios


def _split_sizes(n: int, ratios: dict[str, float]) -> tuple[int, int]:
    """(test, validation) sizes of a class of n: rounded shares, at least one each from n = 3."""

    def size(share: float) -> int:
        if not share or n < 3:
            return 0
        return max(1, int(n * share + 0.5))

    n_test, n_val = size(ratios["test"]), size(ratios["validation"])
    while n_test + n_val >= n and (n_test or n_val):  # keep at least one image to train on
        if n_val >= n_test and n_val:
            n_val -= 1
        else:
            n_test -= 1
    return n_test, n_val


def assign_splits(
    labels_by_key: dict[str, str],
    *,
    seed: int = SPLIT_SEED,
    ratios: dict[str, float] | None = None,
    existing: dict[str, dict[str, int]] | None = None,
) -> dict[str, str]:
    """Deterministic stratified split: same items and seed, same split, whatever the order.

    Each class with at least 3 images gets at least one validation and one test image.
    `existing` ({label: {split: n}}) counts items that already have a split and keep it (a
    derived version): the new ones fill what each split lacks of its share of the new total.
    """
    ratios = ratios or DEFAULT_RATIOS
    existing = existing or {}
    by_label: dict[str, list[str]] = defaultdict(list)
    for key, label in labels_by_key.items():
        by_label[label].append(key)
    result: dict[str, str] = {}
    for label in sorted(by_label):
        keys = sorted(by_label[label])
        random.Random(f"{seed}:{label}").shuffle(keys)
        have = existing.get(label, {})
        n_test, n_val = _split_sizes(len(keys) + sum(have.values()), ratios)
        want_test = max(0, n_test - have.get(Split.TEST, 0))
        want_val = max(0, n_val - have.get(Split.VALIDATION, 0))
        for i, key in enumerate(keys):
            if i < want_test:
                result[key] = Split.TEST
            elif i < want_test + want_val:
                result[key] = Split.VALIDATION
            else:
                result[key] = Split.TRAIN
    return result


# --- decoding in worker processes ---------------------------------------------------------------


def _pool_context() -> multiprocessing.context.BaseContext:
    """Worker processes forked from a fork server: a fresh interpreter started once per
    process (no copy of its database connections, threads or Celery state, no Django at all)
    that imported the decoder once, so every later pool starts in milliseconds, not seconds."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["apps.datasets.canonical"])
    return context


@contextlib.contextmanager
def _process_pool(processes: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of decoding processes for one ingestion.

    Inside a Celery prefork worker this process was made by billiard, Celery's fork of
    multiprocessing, and two of its traits stop the standard library from starting children:
    it is daemonic (daemonic processes may not have children, lest they outlive their parent)
    and its authentication key is billiard's type, which the standard library refuses to
    pickle for a child. For as long as the pool exists (it is shut down, its processes joined,
    before this block ends) the process is non-daemonic with a standard key of the same bytes.
    """
    current = multiprocessing.current_process()
    config = current._config  # no public way to change either once a process runs
    saved = {key: config[key] for key in ("daemon", "authkey") if key in config}
    config["daemon"] = False
    if "authkey" in saved:
        config["authkey"] = AuthenticationString(bytes(saved["authkey"]))
    try:
        pool = ProcessPoolExecutor(max_workers=processes, mp_context=_pool_context())
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        config.update(saved)
        if "daemon" not in saved:
            config.pop("daemon", None)


#: what a source gives to decode: the image's bytes, or where it lies in a local zip archive
Payload = bytes | archives.ZipPlace


@dataclass(frozen=True)
class LocalZip:
    """A zip archive on local disk whose plain entries the decoding processes read themselves
    (apps.datasets.canonical.store_zip_entries), each from its own map of the file."""

    path: str
    limit: int  # the most bytes an entry may unpack to


def _batches(sources: Iterable[tuple[Any, Payload]]) -> Iterator[list[tuple[Any, Payload]]]:
    """Runs of sources with the same kind of payload, of at most BATCH_IMAGES images or
    BATCH_BYTES bytes (declared unpacked sizes, for zip entries: never more is unpacked)."""
    batch: list[tuple[Any, Payload]] = []
    size = 0
    for key, payload in sources:
        if batch and type(payload) is not type(batch[0][1]):
            yield batch
            batch, size = [], 0
        batch.append((key, payload))
        size += payload.size if isinstance(payload, archives.ZipPlace) else len(payload)
        if len(batch) >= BATCH_IMAGES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def decode_images(
    sources: Iterable[tuple[Any, Payload]],
    *,
    processes: int,
    expected: int,
    destination: Destination | None = None,
    local_zip: LocalZip | None = None,
) -> Iterator[tuple[Any, int, Canonical | Stored | str | None]]:
    """(key, bytes decoded, result) for each source, in order: the result is a Canonical, or
    with a `destination` the Stored image already written to the pack of its batch there (the
    batches are numbered from 0, in order), or the reason it was refused.

    A ZipPlace payload (in `local_zip`, with a `destination`) is read by the decoding process
    itself; its result is None, with 0 bytes, when the entry is not plain: the caller reads
    that one with zipfile (ArchiveReader.read_entry), which says what is wrong with it.

    With more than one process and enough images the work is spread over worker processes;
    results still come back in the order of `sources`, so "the first copy" is well defined.
    """

    def submit(
        number: int, batch: list[tuple[Any, Payload]]
    ) -> tuple[list[Any], Callable, list[Payload]]:
        keys = [key for key, _payload in batch]
        payloads = [payload for _key, payload in batch]
        if isinstance(payloads[0], archives.ZipPlace):
            if local_zip is None or destination is None:
                raise ValueError("zip entries to decode without a local zip and a destination")
            work: Callable = partial(
                store_zip_entries,
                archive=local_zip.path,
                destination=destination,
                limit=local_zip.limit,
                number=number,
            )
        elif destination is not None:
            work = partial(store_batch, destination=destination, number=number)
        else:
            work = canonicalize_batch
        return keys, work, payloads

    if processes <= 1 or expected < PARALLEL_MIN_IMAGES:
        for number, batch in enumerate(_batches(sources)):
            keys, function, payloads = submit(number, batch)
            yield from _results(keys, payloads, function(payloads))
        return
    logger.info("decoding %d images in %d processes", expected, processes)
    window: deque[tuple[list[Any], list[Payload], Future]] = deque()
    with _process_pool(processes) as pool:
        for number, batch in enumerate(_batches(sources)):
            keys, function, payloads = submit(number, batch)
            window.append((keys, payloads, pool.submit(function, payloads)))
            while len(window) >= 2 * processes:
                keys, payloads, future = window.popleft()
                yield from _results(keys, payloads, future.result())
        while window:
            keys, payloads, future = window.popleft()
            yield from _results(keys, payloads, future.result())


def _results(
    keys: list[Any], payloads: list[Payload], results: list[Any]
) -> Iterator[tuple[Any, int, Any]]:
    for key, payload, result in zip(keys, payloads, results, strict=True):
        if isinstance(payload, archives.ZipPlace):
            size, result = (0, None) if result is None else result
            yield key, size, result
        else:
            yield key, len(payload), result


# --- one ingestion ------------------------------------------------------------------------------


#: a source's key: path in the upload, label, manifest split, and its archive Entry when a
#: decoding process reads it from the archive itself
_Key = tuple[str, str, str | None, archives.Entry | None]


@dataclass
class _Copy:
    """Where an image came from, with the split its manifest asked for (if any)."""

    path: str
    split: str | None


@dataclass(slots=True)
class _Row:
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


_ROW_FIELDS = tuple(_Row.__slots__)
#: where a row's image and thumbnail are stored
_LOCATION = ("file", "file_offset", "file_length", "thumbnail", "thumbnail_offset")
_LOCATION += ("thumbnail_length",)


def _location(row: _Row) -> tuple:
    return tuple(getattr(row, name) for name in _LOCATION)


def _relocate(row: _Row, location: tuple) -> None:
    for name, value in zip(_LOCATION, location, strict=True):
        setattr(row, name, value)


@dataclass
class _Ingestion:
    version: DatasetVersion
    reporter: ProgressReporter
    rows: list[_Row] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: content hash -> the row kept for it
    kept: dict[str, _Row] = field(default_factory=dict)
    #: content hash -> every copy seen, the kept one first
    copies: dict[str, list[_Copy]] = field(default_factory=dict)
    new: set[str] = field(default_factory=set)  # hashes of images added by this version
    #: sha -> bytes of the whole files stored for it (object stores: see _store_once)
    new_bytes: dict[str, int] = field(default_factory=dict)
    #: storage name of each pack file this ingestion wrote -> its size
    packs: dict[str, int] = field(default_factory=dict)
    #: sha -> (the version whose stored copy the row points at, the row's own location)
    reused: dict[str, tuple[Any, tuple]] = field(default_factory=dict)
    done: int = 0
    total: int = 0
    #: where the decoding processes write their packs, on local storage; on an object store
    #: (S3) they send the bytes back and this process stores each image whole
    destination: Destination | None = None
    _blobs: str = ""
    _thumbs: str = ""

    def __post_init__(self) -> None:
        organization_id = self.version.organization_id
        self._blobs = _blobs_folder(organization_id)
        self._thumbs = _thumbs_folder(organization_id)
        self.packs_folder = _packs_folder(organization_id, self.version.pk)
        storage = default_storage
        if isinstance(storage, FileSystemStorage):
            # path() refuses names that would leave MEDIA_ROOT. An attempt's packs are named
            # by the attempt: a re-run never writes into a file an earlier one left.
            self.destination = Destination(
                folder=storage.path(self.packs_folder),
                prefix=f"a{self.version.attempts}-",
                file_mode=storage.file_permissions_mode,
            )

    @property
    def organization_id(self) -> Any:
        return self.version.organization_id

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})

    # -- the parent's items (derived versions) --------------------------------------------------

    def copy_parent(self) -> None:
        """The parent's rows, same stored images, minus removals, relabels applied."""
        changes = self.version.changes or {}
        removed = {str(pk) for pk in changes.get("remove", [])}
        relabel = {str(pk): label for pk, label in (changes.get("relabel") or {}).items()}
        parent_items = (
            DatasetItem.all_tenants.filter(version=self.version.parent_id)
            .order_by("label", "original_name")
            .values_list("pk", *_ROW_FIELDS)
        )
        for pk, *values in parent_items:
            if str(pk) in removed:
                continue
            row = _Row(*values)
            row.label = relabel.get(str(pk), row.label)
            self.rows.append(row)
            self.kept.setdefault(row.sha256, row)
            self.copies.setdefault(row.sha256, [_Copy(row.original_name, row.split)])

    # -- new images --------------------------------------------------------------------------

    def add(self, path: str, label: str, split: str | None, size: int, result: Any) -> None:
        self.done += 1
        if self.done % 25 == 0:  # the reporter throttles writes; this spares the formatting
            self.reporter.report(
                progress=0.05 + 0.85 * self.done / max(1, self.total),
                message=_("Decoded %(done)d of %(total)d images")
                % {"done": self.done, "total": self.total},
            )
        if isinstance(result, str):
            self.skip(path, result)
            return
        digest = result.sha256
        if isinstance(result, Stored):  # written by the process that decoded it
            assert self.destination is not None  # a Stored result is only made with a destination
            pack = f"{self.packs_folder}/{self.destination.pack_name(result.pack)}"
            self.packs[pack] = self.packs.get(pack, 0) + result.written
        self.copies.setdefault(digest, []).append(_Copy(path, split))
        if digest in self.kept:
            self.skip(path, f"exact duplicate of {self.kept[digest].original_name}")
            return
        if isinstance(result, Stored):
            # An image of at most the thumbnail size is its own thumbnail.
            file = thumbnail = pack
            file_at, file_length = result.png_offset, result.png_bytes
            thumbnail_at, thumbnail_length = file_at, file_length
            if result.thumbnail_offset is not None:
                thumbnail_at, thumbnail_length = result.thumbnail_offset, result.thumbnail_bytes
        else:
            file = thumbnail = _store_once(f"{self._blobs}/{digest[:2]}/{digest}.png", result.png)
            if result.thumbnail is not None:
                thumbnail = _store_once(f"{self._thumbs}/{digest}.webp", result.thumbnail)
            self.new_bytes[digest] = len(result.png) + len(result.thumbnail or b"")
            file_at = file_length = thumbnail_at = thumbnail_length = None
        row = _Row(
            file=file,
            file_offset=file_at,
            file_length=file_length,
            thumbnail=thumbnail,
            thumbnail_offset=thumbnail_at,
            thumbnail_length=thumbnail_length,
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

    def decode(
        self,
        sources: Iterable[tuple[_Key, Payload]],
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
        destination = self.destination
        budget = reader.budget() if reader is not None else None
        for (path, label, split, entry), size, result in decode_images(
            sources,
            processes=processes,
            expected=self.total,
            destination=destination,
            local_zip=local_zip,
        ):
            if entry is not None and reader is not None and budget is not None:
                if result is None:
                    read = reader.read_entry(entry, budget=budget)
                    if isinstance(read, archives.Skipped):
                        self.skip(read.path, read.reason)
                        continue
                    size = len(read)
                    result = canonicalize_batch([read])[0]  # stored whole, by add()
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

    def reuse_stored(self) -> None:
        """Point the new rows at the stored copy of an image the organization already holds
        (in another version or dataset): uploading the same pictures again, in a new dataset
        say, then stores nothing new. confirm_reused() checks those copies are still there
        when the rows are written; the packs left with nothing in use are deleted after that.
        """
        others = DatasetItem.all_tenants.filter(organization_id=self.organization_id).exclude(
            version=self.version
        )
        # No query per chunk when there is nothing to share: the organization's first images.
        digests = sorted(self.new) if others.exists() else []
        found: dict[str, tuple] = {}
        for start in range(0, len(digests), 500):
            chunk = digests[start : start + 500]
            rows = (
                others.filter(sha256__in=chunk)
                .order_by("created_at")
                .values_list("sha256", "version_id", *_LOCATION)
            )
            for digest, version_id, *location in rows:
                found.setdefault(digest, (version_id, tuple(location)))
        for row in self.rows:
            if row.sha256 in found and row.sha256 in self.new:
                version_id, location = found[row.sha256]
                self.reused[row.sha256] = (version_id, _location(row))
                _relocate(row, location)
                self.new_bytes.pop(row.sha256, None)

    def confirm_reused(self) -> None:
        """Lock the versions whose stored images the new rows reuse, inside the transaction
        that writes the rows. A dataset deleted in the meantime took those files with it (see
        apps.datasets.deletion, which locks its versions the same way, and keeps what rows of
        other datasets point at): its rows go back to this version's own copy."""
        sources = {version_id for version_id, _own in self.reused.values()}
        if not sources:
            return
        alive = set(
            DatasetVersion.all_tenants.select_for_update()
            .filter(pk__in=sources)
            .values_list("pk", flat=True)
        )
        for row in self.rows:
            reused = self.reused.get(row.sha256)
            if reused is not None and reused[0] not in alive:
                _relocate(row, reused[1])
                del self.reused[row.sha256]

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

    def delete_packs(self, names: list[str]) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(default_storage.path(name))

    def remove_packs(self) -> None:
        """Delete every pack of this version (an earlier attempt's, or this failed one's): no
        other version's rows point into them."""
        if self.destination is not None:
            shutil.rmtree(self.destination.folder, ignore_errors=True)

    def insert_rows(self) -> None:
        """INSERT the version's item rows, a thousand per executemany.

        bulk_create runs each field's Python hooks on every row (file descriptors, auto_now,
        UUID conversion): about 200 us a row here, as long as decoding a small image takes.
        These values are plain already; the timestamps and keys are converted by their own
        fields, once, and the ids made in the form UUIDField gives this database.
        """
        meta = DatasetItem._meta
        alias = router.db_for_write(DatasetItem)
        connection = connections[alias]
        fields = {f.attname: f for f in meta.concrete_fields}
        names = ("id", "created_at", "updated_at", "organization_id", "version_id", *_ROW_FIELDS)
        if set(names) != set(fields):
            raise RuntimeError(f"DatasetItem has fields {sorted(fields)}; update _Row")
        quote = connection.ops.quote_name
        sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - names from the model
            quote(meta.db_table),
            ", ".join(quote(fields[name].column) for name in names),
            ", ".join(["%s"] * len(names)),
        )
        now = fields["created_at"].get_db_prep_save(timezone.now(), connection)
        owner = (
            fields["organization_id"].get_db_prep_save(self.version.organization_id, connection),
            fields["version_id"].get_db_prep_save(self.version.pk, connection),
        )
        # What UUIDField.get_db_prep_save makes of a new UUID, without its hooks per row.
        new_id = uuid.uuid4 if connection.features.has_native_uuid_field else _uuid4_hex
        values = operator.attrgetter(*_ROW_FIELDS)
        with connection.cursor() as cursor:
            for start in range(0, len(self.rows), 1000):
                cursor.executemany(
                    sql,
                    [
                        (new_id(), now, now, *owner, *values(row))
                        for row in self.rows[start : start + 1000]
                    ],
                )


def _uuid4_hex() -> str:
    return uuid.uuid4().hex


def _blobs_folder(organization_id: Any) -> str:
    return f"orgs/{organization_id}/blobs"


def _thumbs_folder(organization_id: Any) -> str:
    return f"orgs/{organization_id}/thumbs"


def _packs_folder(organization_id: Any, version_id: Any) -> str:
    return f"orgs/{organization_id}/packs/{version_id}"


def _store_once(name: str, data: bytes) -> str:
    """Store content-addressed bytes under `name` unless they are there already."""
    storage = default_storage
    if isinstance(storage, FileSystemStorage):
        # path() refuses names that would leave MEDIA_ROOT
        write_file_once(storage.path(name), data, mode=storage.file_permissions_mode)
        return name
    # Object stores (S3) write whole objects; only the name must not be changed.
    if storage.exists(name):
        return name
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        # Another worker stored the same content in the meantime; its copy is as good.
        storage.delete(saved)
    return name


def _loose_sources(run: _Ingestion, files: list[dict[str, Any]]) -> Iterator[tuple[_Key, bytes]]:
    limit = settings.LEPTON_MAX_IMAGE_BYTES
    for added in files:
        name = added["name"]
        try:
            with default_storage.open(added["file"], "rb") as handle:
                data = handle.read(limit + 1)
        except OSError:
            run.skip(name, "the uploaded file is missing from storage: upload it again")
            continue
        if len(data) > limit:
            run.skip(name, f"larger than {human_size(limit)}")
            continue
        yield (name, added["label"], None, None), data


def _archive_sources(
    run: _Ingestion,
    reader: archives.ArchiveReader,
    scan: archives.Scan,
    places: list[archives.ZipPlace] | None,
) -> Iterator[tuple[_Key, Payload]]:
    """The archive's images: where each lies, for the decoding processes to read them (a zip
    on local disk), or their bytes, read here."""
    if places is not None:
        for entry, place in zip(scan.entries, places, strict=True):
            yield (entry.name, entry.label, entry.split, entry), place
        return
    for read in reader.read(scan):
        if isinstance(read, archives.Skipped):
            run.skip(read.path, read.reason)
            continue
        entry, data = read
        yield (entry.name, entry.label, entry.split, None), data


def ingest_images(version: DatasetVersion) -> None:
    """Ingest an image version; raises ServiceError when nothing usable is in it."""
    with _collections_of_new_objects_only():
        _ingest_images(version)


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


def _ingest_images(version: DatasetVersion) -> None:
    DatasetItem.all_tenants.filter(version=version).delete()  # a re-run starts over
    reporter = ProgressReporter(version)
    reporter.report(force=True, message=_("Reading the archive"), progress=0.0)
    run = _Ingestion(version=version, reporter=reporter)
    run.remove_packs()  # what an interrupted attempt wrote
    try:
        _ingest_into(version, run)
    except BaseException:
        run.remove_packs()  # no row points into them: nothing of the version was kept
        raise


def _ingest_into(version: DatasetVersion, run: _Ingestion) -> None:
    reporter = run.reporter
    derived = version.parent_id is not None
    if derived:
        run.copy_parent()
    changes = dict(version.changes or {})
    loose = list(changes.get("images") or [])
    sources: list[Iterator] = []
    split_source = version.split_source or "auto"
    if version.source:
        with _open_source(version) as (fileobj, local_path):
            limits = archives.Limits.from_settings()
            reader = archives.ArchiveReader(fileobj, limits=limits, source_name=version.source_name)
            scan = reader.scan()
            run.skipped.extend(s.as_dict() for s in scan.skipped)
            if scan.manifest_has_split and not derived:
                split_source = "manifest"
            run.total = len(scan.entries) + len(loose)
            reporter.report(force=True, message=_("Decoding images"), progress=0.05)
            local_zip = None
            places = None
            if local_path is not None and run.destination is not None:
                places = reader.zip_places(scan)  # None for a tar: read here, as a stream
                if places is not None:
                    local_zip = LocalZip(local_path, limits.max_entry_bytes)
            sources.append(_archive_sources(run, reader, scan, places))
            sources.append(_loose_sources(run, loose))
            run.decode(_chain(sources), reader=reader, local_zip=local_zip)
    else:
        run.total = len(loose)
        run.decode(_loose_sources(run, loose))
    if not run.rows:
        # The message sends the user to the skipped files; keep them on the failed version.
        DatasetVersion.all_tenants.filter(pk=version.pk).update(skipped=run.skipped)
        if derived:
            raise InvalidInput(
                "The new version would hold no images: nothing is left of the earlier version "
                "and none of the added images could be read; see the skipped files for reasons."
            )
        raise InvalidInput(
            "No readable image was found in the archive; see the skipped files for reasons."
        )
    reporter.report(force=True, message=_("Assigning splits"), progress=0.92)
    run.reuse_stored()
    ratios = run.assign_splits()
    counts: dict[str, dict[str, int]] = {}
    for row in run.rows:
        per_class = counts.setdefault(row.label, {s: 0 for s in SPLITS} | {"total": 0})
        per_class[row.split] += 1
        per_class["total"] += 1
    duplicates, leakage = run.findings()
    if derived:
        changes["added"] = len(run.new)
    with transaction.atomic():
        run.confirm_reused()
        unused = run.unused_packs()
        run.insert_rows()
        version.skipped = run.skipped
        version.split_source = split_source
        health = health_report(
            version,
            duplicates=duplicates,
            leakage=leakage,
            items=[
                (row.label, row.split, row.width, row.height, row.original_format)
                for row in run.rows
            ],
        )
        message = ngettext(
            "Ready: %(n)d image in %(c)d classes",
            "Ready: %(n)d images in %(c)d classes",
            len(run.rows),
        ) % {"n": len(run.rows), "c": len(counts)}
        if run.skipped:
            message += ngettext(
                ", %(n)d file skipped", ", %(n)d files skipped", len(run.skipped)
            ) % {"n": len(run.skipped)}
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
    run.delete_packs(unused)  # the rows pointing elsewhere are committed


@contextlib.contextmanager
def _open_source(version: DatasetVersion) -> Iterator[tuple[Any, str | None]]:
    """The uploaded archive, memory-mapped when it is a local file (see MappedFile), and the
    path of that local file (None on an object store)."""
    storage = version.source.storage
    if not isinstance(storage, FileSystemStorage):
        with version.source.open("rb") as handle:
            yield handle, None
        return
    path = storage.path(version.source.name)
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            yield handle, None
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield archives.MappedFile(mapped), path


def _chain(sources: list[Iterator]) -> Iterator:
    for source in sources:
        yield from source
