"""Uploaded archives (zip, tar, tar.gz): read safely, with their limits counted as they are read.

Modules: ``reading`` (detecting the kind, the passes over an archive, the upload's check),
``limits`` (entry counts, sizes, compression bombs, counted on bytes actually read),
``names`` (which entries are images and why the others are skipped), ``labels`` (class
folders or the manifest CSV) and ``zip_entries`` (a plain zip entry read from a mapped file,
in the decoding processes too). The names below are the package's API.

An archive that cannot be used at all raises InvalidInput or PayloadTooLarge with a message that
names the file and says how to fix it; an entry that cannot be used is skipped with a reason.
"""

from apps.datasets.archives.labels import Entry, Scan
from apps.datasets.archives.limits import Budget, EntryTooLarge, Limits
from apps.datasets.archives.names import Skipped
from apps.datasets.archives.reading import (
    ArchiveReader,
    UnreadableEntry,
    detect_kind,
    inspect_archive,
)
from apps.datasets.archives.zip_entries import MappedFile, ZipPlace, read_zip_entry

__all__ = [
    "ArchiveReader",
    "Budget",
    "Entry",
    "EntryTooLarge",
    "Limits",
    "MappedFile",
    "Scan",
    "Skipped",
    "UnreadableEntry",
    "ZipPlace",
    "detect_kind",
    "inspect_archive",
    "read_zip_entry",
]
