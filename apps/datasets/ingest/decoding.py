"""Decoding an ingestion's images in a pool of worker processes (LEPTON_INGEST_PROCESSES).

The work is cut into batches (BATCH_IMAGES images or BATCH_BYTES bytes) that go to processes
forked from a fork server which imported apps.datasets.canonical once; each process decodes,
re-encodes and (on local storage) writes its batch to a pack file itself, and sends back only
what the rows need. Results come back in the order of the sources.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.context
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing.process import AuthenticationString
from typing import Any

from apps.datasets.archives.zip_entries import ZipPlace
from apps.datasets.canonical import (
    Allowance,
    Canonical,
    Destination,
    OverAllowance,
    Stored,
    canonicalize_batch,
    store_batch,
    store_zip_entries,
    use_allowance,
)

logger = logging.getLogger(__name__)

#: below this many new images, starting worker processes costs more than it saves
PARALLEL_MIN_IMAGES = 64
#: a unit of work sent to a worker process: this many images or this many bytes
BATCH_IMAGES = 32
BATCH_BYTES = 4 * 1024 * 1024


def _pool_context() -> multiprocessing.context.BaseContext:
    """Worker processes forked from a fork server: a fresh interpreter started once per
    process (no copy of its database connections, threads or Celery state, no Django at all)
    that imported the decoder once, so every later pool starts in milliseconds, not seconds."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["apps.datasets.canonical"])
    return context


def new_allowance(limit: int | None) -> Allowance:
    """An ingestion's Allowance of `limit` bytes (None: no limit, bytes still counted), in
    shared memory its decoding processes can be given when they start."""
    return Allowance(limit, context=_pool_context())


@contextlib.contextmanager
def process_pool(
    processes: int, *, allowance: Allowance | None = None
) -> Iterator[ProcessPoolExecutor]:
    """A pool of decoding processes for one ingestion.

    Inside a Celery prefork worker this process was made by billiard, Celery's fork of
    multiprocessing, and two of its traits stop the standard library from starting children:
    it is daemonic (daemonic processes may not have children, lest they outlive their parent)
    and its authentication key is billiard's type, which the standard library refuses to
    pickle for a child. For as long as the pool exists (it is shut down, its processes joined,
    before this block ends) the process is non-daemonic with a standard key of the same bytes.

    Each process is given `allowance` as it starts (shared memory cannot travel with the work).
    """
    current = multiprocessing.current_process()
    config = current._config  # no public way to change either once a process runs
    saved = {key: config[key] for key in ("daemon", "authkey") if key in config}
    config["daemon"] = False
    if "authkey" in saved:
        config["authkey"] = AuthenticationString(bytes(saved["authkey"]))
    try:
        pool = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=_pool_context(),
            initializer=use_allowance,
            initargs=(allowance,),
        )
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        config.update(saved)
        if "daemon" not in saved:
            config.pop("daemon", None)


#: what a source gives to decode: the image's bytes, or where it lies in a local zip archive
Payload = bytes | ZipPlace


@dataclass(frozen=True)
class LocalZip:
    """A zip archive on local disk whose plain entries the decoding processes read themselves
    (apps.datasets.canonical.store_zip_entries), each from its own map of the file."""

    path: str
    limit: int  # the most bytes an entry may unpack to


def batches(sources: Iterable[tuple[Any, Payload]]) -> Iterator[list[tuple[Any, Payload]]]:
    """Runs of sources with the same kind of payload, of at most BATCH_IMAGES images or
    BATCH_BYTES bytes (declared unpacked sizes, for zip entries: never more is unpacked)."""
    batch: list[tuple[Any, Payload]] = []
    size = 0
    for key, payload in sources:
        if batch and type(payload) is not type(batch[0][1]):
            yield batch
            batch, size = [], 0
        batch.append((key, payload))
        size += payload.size if isinstance(payload, ZipPlace) else len(payload)
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
    max_pixels: int,
    allowance: Allowance | None = None,
) -> Generator[tuple[Any, int, Canonical | Stored | OverAllowance | str | None], None, None]:
    """(key, bytes decoded, result) for each source, in order: the result is a Canonical, or
    with a `destination` the Stored image already written to the pack of its batch there (the
    batches are numbered from 0, in order), or the reason it was refused.

    A ZipPlace payload (in `local_zip`, with a `destination`) is read by the decoding process
    itself; its result is None, with 0 bytes, when the entry is not plain: the caller reads
    that one with zipfile (ArchiveReader.read_entry), which says what is wrong with it.

    An image whose header declares more than `max_pixels` pixels is refused before it is
    decoded (LEPTON_MAX_DATASET_IMAGE_PIXELS): its result is the reason, naming the limit.

    Images written to packs reserve their bytes from `allowance` first: one that does not fit
    is an OverAllowance, as is every one decoded after it (the caller stops; closing this
    generator waits for the processes, so nothing is written after it returns).

    With more than one process and enough images the work is spread over worker processes;
    results still come back in the order of `sources`, so "the first copy" is well defined.
    """

    def submit(
        number: int, batch: list[tuple[Any, Payload]], allowance: Allowance | None
    ) -> tuple[list[Any], Callable, list[Payload]]:
        keys = [key for key, _payload in batch]
        payloads = [payload for _key, payload in batch]
        if isinstance(payloads[0], ZipPlace):
            if local_zip is None or destination is None:
                raise ValueError("zip entries to decode without a local zip and a destination")
            work: Callable = partial(
                store_zip_entries,
                archive=local_zip.path,
                destination=destination,
                limit=local_zip.limit,
                number=number,
                max_pixels=max_pixels,
                allowance=allowance,
            )
        elif destination is not None:
            work = partial(
                store_batch,
                destination=destination,
                number=number,
                max_pixels=max_pixels,
                allowance=allowance,
            )
        else:
            work = partial(canonicalize_batch, max_pixels=max_pixels)
        return keys, work, payloads

    if processes <= 1 or expected < PARALLEL_MIN_IMAGES:
        for number, batch in enumerate(batches(sources)):
            keys, function, payloads = submit(number, batch, allowance)
            yield from _results(keys, payloads, function(payloads))
        return
    logger.info("decoding %d images in %d processes", expected, processes)
    window: deque[tuple[list[Any], list[Payload], Future]] = deque()
    with process_pool(processes, allowance=allowance) as pool:
        for number, batch in enumerate(batches(sources)):
            # the processes hold the allowance already (use_allowance): it cannot be pickled
            keys, function, payloads = submit(number, batch, None)
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
        if isinstance(payload, ZipPlace):
            size, result = (0, None) if result is None else result
            yield key, size, result
        else:
            yield key, len(payload), result
