"""The images an ingestion decodes: the archive's entries (where each lies in a local zip, for
the decoding processes to read themselves, or their bytes) and the loose files added to a
version, each with its key (path in the upload, label, manifest split, archive entry)."""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage

from apps.core.text import human_size
from apps.datasets import archives
from apps.datasets.ingest.decoding import Payload
from apps.datasets.models import DatasetVersion

#: a source's key: path in the upload, label, manifest split, and its archive Entry when a
#: decoding process reads it from the archive itself
SourceKey = tuple[str, str, str | None, archives.Entry | None]
#: how a source reports a file it leaves out: its path and the reason
Skip = Callable[[str, str], None]


def loose_sources(files: list[dict[str, Any]], skip: Skip) -> Iterator[tuple[SourceKey, bytes]]:
    """The bytes of the loose images added to a version, within the size limit."""
    limit = settings.LEPTON_MAX_IMAGE_BYTES
    for added in files:
        name = added["name"]
        try:
            with default_storage.open(added["file"], "rb") as handle:
                data = handle.read(limit + 1)
        except OSError:
            skip(name, "the uploaded file is missing from storage: upload it again")
            continue
        if len(data) > limit:
            skip(name, f"larger than {human_size(limit)}")
            continue
        yield (name, added["label"], None, None), data


def archive_sources(
    reader: archives.ArchiveReader,
    scan: archives.Scan,
    places: list[archives.ZipPlace] | None,
    skip: Skip,
) -> Iterator[tuple[SourceKey, Payload]]:
    """The archive's images: where each lies, for the decoding processes to read them (a zip
    on local disk), or their bytes, read here."""
    if places is not None:
        for entry, place in zip(scan.entries, places, strict=True):
            yield (entry.name, entry.label, entry.split, entry), place
        return
    for read in reader.read(scan):
        if isinstance(read, archives.Skipped):
            skip(read.path, read.reason)
            continue
        entry, data = read
        yield (entry.name, entry.label, entry.split, None), data


@contextlib.contextmanager
def open_source(version: DatasetVersion) -> Iterator[tuple[Any, str | None]]:
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


def chain(*sources: Iterator) -> Iterator:
    for source in sources:
        yield from source
