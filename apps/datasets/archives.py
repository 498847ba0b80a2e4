"""Reading uploaded zip archives safely: names checked, sizes counted on bytes actually read.

Pure functions over a file object; no database. An entry that cannot be used is skipped with a
reason a person can act on; an archive that cannot be used at all raises InvalidInput.
"""

from __future__ import annotations

import posixpath
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.core.text import human_size
from workers.ml.images import IMAGE_EXTENSIONS

JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_DRIVE = re.compile(r"^[a-zA-Z]:")


@dataclass(frozen=True)
class Entry:
    name: str  # the name as stored in the archive
    label: str  # the class folder it sits in
    info: zipfile.ZipInfo


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def classify_entry(info: zipfile.ZipInfo) -> Entry | Skipped | None:
    """Decide what an archive entry is: an image to ingest, a skip with a reason, or nothing."""
    name = info.filename
    if info.is_dir():
        return None
    # "./cat/a.png" is the same entry as "cat/a.png"; "." is no hidden file.
    parts = [p for p in name.split("/") if p and p != "."]
    if "\\" in name or _DRIVE.match(name) or name.startswith("/") or ".." in parts:
        return Skipped(name, "unsafe path (absolute, drive letter, backslash or '..'): skipped")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return Skipped(name, "symbolic link: skipped")
    if parts and parts[0] == "__MACOSX":
        return Skipped(name, "macOS metadata folder (__MACOSX): ignored")
    if any(p.startswith(".") for p in parts) or parts[-1].lower() in JUNK_NAMES:
        return Skipped(name, "hidden or system file: ignored")
    extension = posixpath.splitext(parts[-1])[1].lower()
    if extension not in IMAGE_EXTENSIONS:
        allowed = ", ".join(sorted(IMAGE_EXTENSIONS))
        return Skipped(name, f"not an image file (extension '{extension}'; use {allowed})")
    if len(parts) < 2:
        return Skipped(name, "not inside a class folder: put it in a folder named after its class")
    return Entry(name=name, label=parts[-2], info=info)


def open_zip(fileobj: BinaryIO, *, max_entries: int, source_name: str) -> zipfile.ZipFile:
    """Open an uploaded archive, refusing non-zips and archives with too many entries."""
    fileobj.seek(0)
    if not zipfile.is_zipfile(fileobj):
        raise InvalidInput(
            f"'{source_name}' is not a zip archive, or it is damaged or incomplete (cut off "
            "during a download?). Upload a .zip with one folder per class, e.g. cat/a.jpg, "
            "dog/b.png.",
            field="file",
        )
    fileobj.seek(0)
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidInput(f"'{source_name}' is a damaged zip archive ({exc}).", field="file")
    if len(archive.infolist()) > max_entries:
        raise PayloadTooLarge(
            f"'{source_name}' has {len(archive.infolist())} entries; the limit is {max_entries}. "
            "Split it into several uploads.",
            field="file",
        )
    return archive


def inspect_archive(fileobj: BinaryIO, *, max_entries: int, source_name: str) -> str:
    """Check an uploaded archive before it is kept; returns its kind ("zip")."""
    inspect_zip(fileobj, max_entries=max_entries, source_name=source_name)
    return "zip"


def inspect_zip(fileobj: BinaryIO, *, max_entries: int, source_name: str) -> list[Entry]:
    """Check an upload before it is kept: a readable zip with at least one image in a folder."""
    with open_zip(fileobj, max_entries=max_entries, source_name=source_name) as archive:
        entries = [e for e in map(classify_entry, archive.infolist()) if isinstance(e, Entry)]
    if not entries:
        raise InvalidInput(
            f"'{source_name}' contains no images in class folders. Put each class's images in "
            "a folder named after the class, e.g. cat/a.jpg, dog/b.png.",
            field="file",
        )
    fileobj.seek(0)
    return entries


class UnreadableEntry(Exception):
    """An entry whose bytes cannot be unpacked: damaged, encrypted or oddly compressed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_entry(archive: zipfile.ZipFile, entry: Entry, *, limit: int) -> bytes:
    """Read an entry, stopping at `limit` bytes actually decompressed (headers can lie)."""
    try:
        with archive.open(entry.info) as stream:
            data = stream.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise UnreadableEntry(f"damaged entry in the zip archive ({exc})")
    except (RuntimeError, NotImplementedError) as exc:
        # zipfile raises these for encrypted entries and unsupported compression methods.
        raise UnreadableEntry(f"cannot be unpacked ({exc})")
    if len(data) > limit:
        raise PayloadTooLarge(f"larger than {human_size(limit)} once unpacked")
    return data


def iter_entries(archive: zipfile.ZipFile) -> Iterator[Entry | Skipped]:
    for info in archive.infolist():
        classified = classify_entry(info)
        if classified is not None:
            yield classified
