"""Readers of archives in memory, as the ingestion has them, for the tests of
apps.datasets.archives: no database."""

from __future__ import annotations

import io
import mmap
import tarfile
import zipfile

from apps.datasets.archives import ArchiveReader, Limits, MappedFile
from tests.support.archives import class_images, tar_bytes, zip_bytes

LIMITS = Limits(max_entries=1000, max_total_bytes=64 << 20, max_entry_bytes=8 << 20, max_ratio=100)
GOOD = class_images(2)


def reader(
    data: bytes, name: str = "upload.bin", *, mapped: bool = True, **limits
) -> ArchiveReader:
    """A reader of `data` as the ingestion has it: memory-mapped (or, unmapped, as an upload)."""
    chosen = Limits(**(LIMITS.__dict__ | limits))
    fileobj = mapped_file(data) if mapped and data else io.BytesIO(data)
    return ArchiveReader(fileobj, limits=chosen, source_name=name)


def mapped_file(data: bytes) -> MappedFile:
    area = mmap.mmap(-1, len(data))
    area.write(data)
    area.seek(0)
    return MappedFile(area)


def scan(data: bytes, **limits):
    return reader(data, **limits).scan()


def labels(data: bytes) -> dict[str, str]:
    return {e.name: e.label for e in scan(data).entries}


def reasons(data: bytes) -> dict[str, str]:
    return {s.path: s.reason for s in scan(data).skipped}


def read_all(data: bytes, **limits) -> list:
    archive = reader(data, **limits)
    return list(archive.read(archive.scan()))


ARCHIVES = {
    "zip": lambda entries: zip_bytes(entries),
    "stored zip": lambda entries: zip_bytes(entries, compression=zipfile.ZIP_STORED),
    "tar": lambda entries: tar_bytes(entries),
    "tar.gz": lambda entries: tar_bytes(entries, gz=True),
    "gnu tar": lambda entries: tar_bytes(entries, fmt=tarfile.GNU_FORMAT),
    "ustar": lambda entries: tar_bytes(entries, fmt=tarfile.USTAR_FORMAT),
}
