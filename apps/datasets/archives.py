"""Reading uploaded archives (zip, tar, tar.gz) safely, and the manifest CSV inside them.

Nothing here writes a file: entries are read into memory, one at a time, and the caller stores
re-encoded images under names it makes itself, so an entry's name can never choose where bytes
land. Names are still checked (no `..`, absolute paths, drive letters, backslashes, links,
devices) so that every skipped entry is listed with a reason a person can act on.

Sizes are counted on bytes actually read, never on what headers declare: the total an archive
unpacks to, the size of each entry, and the ratio of unpacked bytes to the upload's size (a
compression bomb) are all checked while reading. Tar archives are read as a stream, once per
pass, and never with extractall.

An archive that cannot be used at all raises InvalidInput or PayloadTooLarge with a message that
names the file and says how to fix it; an entry that cannot be used is skipped with a reason.
"""

from __future__ import annotations

import csv
import gzip
import io
import mmap
import posixpath
import re
import stat
import struct
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from isal import isal_zlib

from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.core.text import human_size
from workers.ml.images import IMAGE_EXTENSIONS

JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
MANIFEST_MAX_BYTES = 32 * 1024 * 1024
#: the compression-ratio check starts once this much was unpacked: tiny archives of headers
#: and padding compress very well without being bombs
RATIO_FLOOR_BYTES = 4 * 1024 * 1024
#: bytes tarfile may read on its own for one member's headers (PAX, GNU long names)
TAR_HEADER_ALLOWANCE = 1024 * 1024
CHUNK = 256 * 1024
#: general-purpose flags a zip entry read straight from a mapped archive may have: deflate
#: options, sizes in a data descriptor, UTF-8 name. Anything else is zipfile's to judge.
_PLAIN_ZIP_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "validate": "validation",
    "test": "test",
    "testing": "test",
}
_COLUMNS = {
    "file": "file",
    "filename": "file",
    "path": "file",
    "image": "file",
    "label": "label",
    "class": "label",
    "split": "split",
}
_DRIVE = re.compile(r"^[a-zA-Z]:")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_UNSAFE = "unsafe path (absolute, drive letter, backslash, '..' or control character): skipped"
_HOW = "one folder per class, e.g. cat/a.jpg, dog/b.png"


@dataclass(frozen=True)
class Limits:
    max_entries: int
    max_total_bytes: int
    max_entry_bytes: int
    max_ratio: float

    @classmethod
    def from_settings(cls, **overrides: Any) -> Limits:
        from django.conf import settings

        values = {
            "max_entries": settings.LEPTON_MAX_ARCHIVE_ENTRIES,
            "max_total_bytes": settings.LEPTON_MAX_ARCHIVE_BYTES,
            "max_entry_bytes": settings.LEPTON_MAX_IMAGE_BYTES,
            "max_ratio": settings.LEPTON_MAX_COMPRESSION_RATIO,
        }
        return cls(**(values | overrides))


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Entry:
    """An image to ingest: where it is in the archive, its label, and its manifest split."""

    name: str  # the path in the archive, as people read it (decoded, NFC)
    label: str
    split: str | None
    key: int  # zip: index in the central directory; tar: the member's header offset


@dataclass
class Scan:
    kind: str  # "zip" | "tar"
    entries: list[Entry]
    skipped: list[Skipped]
    manifest: str | None = None  # the manifest's path, when one was used
    manifest_has_split: bool = False


@dataclass(frozen=True)
class _Member:
    name: str
    kind: str  # file | dir | symlink | hardlink | device | fifo | sparse | other
    key: int


class UnreadableEntry(Exception):
    """An entry whose bytes cannot be unpacked: damaged, encrypted or oddly compressed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- names ------------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    # macOS writes names decomposed (e + combining accent); one label must not become two.
    return unicodedata.normalize("NFC", name)


def _parts(name: str) -> list[str]:
    # "./cat/a.png" is the same entry as "cat/a.png"; "." is no hidden file.
    return [p for p in name.split("/") if p and p != "."]


def _unsafe(name: str) -> bool:
    return (
        "\\" in name
        or bool(_DRIVE.match(name))
        or name.startswith("/")
        or ".." in _parts(name)
        or bool(_CONTROL.search(name))
    )


def _classify(member: _Member) -> tuple[str, list[str]] | Skipped | None:
    """("image" | "csv", parts), a skip with its reason, or None for a folder."""
    name = member.name
    if member.kind == "dir":
        return None
    if _unsafe(name):
        return Skipped(name, _UNSAFE)
    special = {
        "symlink": "symbolic link: skipped",
        "hardlink": "hard link: skipped",
        "device": "device file: skipped",
        "fifo": "named pipe (FIFO): skipped",
        "sparse": "sparse file: skipped",
        "other": "not a regular file: skipped",
    }
    if member.kind in special:
        return Skipped(name, special[member.kind])
    parts = _parts(name)
    if not parts:
        return None
    if "__MACOSX" in parts:
        return Skipped(name, "macOS metadata folder (__MACOSX): ignored")
    if any(p.startswith(".") for p in parts) or parts[-1].lower() in JUNK_NAMES:
        return Skipped(name, "hidden or system file: ignored")
    extension = posixpath.splitext(parts[-1])[1].lower()
    if extension == ".csv":
        return "csv", parts
    if extension not in IMAGE_EXTENSIONS:
        allowed = ", ".join(sorted(IMAGE_EXTENSIONS))
        what = f"extension '{extension}'" if extension else "no extension"
        return Skipped(name, f"not an image file ({what}; use {allowed})")
    return "image", parts


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its author wrote it.

    Zip has two ways to say a name is UTF-8 (the language flag, the Info-ZIP Unicode Path
    field); many tools write UTF-8 with neither, and zipfile then reads it as CP437 (mojibake
    for Chinese, Arabic, accents). A name that is valid UTF-8 is taken as UTF-8.
    """
    name = info.filename
    raw = name.encode("utf-8" if info.flag_bits & 0x800 else "cp437", errors="replace")
    unicode_path = _unicode_path_field(info.extra, raw)
    if unicode_path is not None:
        return unicode_path
    if not info.flag_bits & 0x800:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return name


def _unicode_path_field(extra: bytes, raw_name: bytes) -> str | None:
    at = 0
    while at + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[at : at + 4])
        data = extra[at + 4 : at + 4 + size]
        at += 4 + size
        if tag == 0x7075 and len(data) > 5 and data[0] == 1:
            (crc,) = struct.unpack("<I", data[1:5])
            if crc == zlib.crc32(raw_name):  # the field belongs to this very name
                try:
                    return data[5:].decode("utf-8")
                except UnicodeDecodeError:
                    return None
    return None


def _tar_name(member: tarfile.TarInfo) -> str:
    name = member.name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 came through as surrogates
        name = name.encode("utf-8", "surrogateescape").decode("latin-1")
    return name


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.issparse():
        return "sparse"
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "fifo"
    return "other"


def _zip_kind(info: zipfile.ZipInfo) -> str:
    if info.is_dir():
        return "dir"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        return "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "other"
    return "file"


# --- counting ---------------------------------------------------------------------------------


class Budget:
    """Bytes actually unpacked from one archive, checked against the total and ratio limits."""

    def __init__(self, limits: Limits, *, archive_size: int, source_name: str) -> None:
        self.limits = limits
        self.archive_size = max(1, archive_size)
        self.source_name = source_name
        self.read = 0

    def add(self, n: int) -> None:
        self.read += n
        if self.read > self.limits.max_total_bytes:
            raise PayloadTooLarge(
                f"'{self.source_name}' unpacks to more than "
                f"{human_size(self.limits.max_total_bytes)} (counted while reading it); split "
                "it into several uploads.",
                field="file",
            )
        if self.read > RATIO_FLOOR_BYTES and self.read > self.limits.max_ratio * self.archive_size:
            raise PayloadTooLarge(
                f"'{self.source_name}' unpacks to more than {self.limits.max_ratio:g} times its "
                f"own size ({human_size(self.archive_size)}): a compression bomb, or a very "
                "compressible archive. Store images as PNG or JPEG before archiving them.",
                field="file",
            )

    def remaining(self) -> int:
        return self.limits.max_total_bytes - self.read


class _CountingReader:
    """The unpacked byte stream of a tar, counted against a Budget.

    While tarfile reads headers on its own (between members) at most `header_allowance` bytes
    may pass: a PAX header or GNU long name declaring gigabytes would otherwise be read into
    memory in one piece.
    """

    def __init__(self, raw: BinaryIO, budget: Budget, source_name: str) -> None:
        self.raw = raw
        self.budget = budget
        self.source_name = source_name
        self.header_allowance: int | None = None
        self.header_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(CHUNK if size is None or size < 0 else size)
        self.budget.add(len(data))
        if self.header_allowance is not None:
            self.header_read += len(data)
            if self.header_read > self.header_allowance:
                raise PayloadTooLarge(
                    f"'{self.source_name}' has a tar header larger than "
                    f"{human_size(TAR_HEADER_ALLOWANCE)}; no real archive needs one. Create "
                    "the archive again with a standard tool (tar, 7-Zip).",
                    field="file",
                )
        return data

    def headers_begin(self, pending: int = 0) -> None:
        self.header_allowance = TAR_HEADER_ALLOWANCE + pending
        self.header_read = 0

    def headers_end(self) -> None:
        self.header_allowance = None


def _read_stream(stream: Any, *, limit: int, budget: Budget | None) -> bytes:
    """Read at most `limit` bytes (raising EntryTooLarge past it), counting each chunk."""
    chunks = []
    total = 0
    while True:
        chunk = stream.read(min(CHUNK, limit + 1 - total))
        if not chunk:
            break
        total += len(chunk)
        if budget is not None:
            budget.add(len(chunk))
        chunks.append(chunk)
        if total > limit:
            raise EntryTooLarge(f"larger than {human_size(limit)} once unpacked")
    return b"".join(chunks)


def _drain(stream: Any) -> None:
    while stream.read(CHUNK):
        pass


class EntryTooLarge(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- opening ----------------------------------------------------------------------------------


def _size_of(fileobj: BinaryIO) -> int:
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    return size


def _not_an_archive(source_name: str, detail: str = "") -> InvalidInput:
    return InvalidInput(
        f"'{source_name}' is not a zip archive or a tar archive, or it is damaged or incomplete "
        f"(cut off during a download?){detail}. Upload a .zip, .tar or .tar.gz with {_HOW}.",
        field="file",
    )


def _empty(source_name: str) -> InvalidInput:
    return InvalidInput(
        f"'{source_name}' is an empty archive: it holds no files. Upload an archive with {_HOW}.",
        field="file",
    )


def detect_kind(fileobj: BinaryIO, *, source_name: str) -> str:
    """ "zip" or "tar", by content (the name's extension says nothing); raises InvalidInput."""
    fileobj.seek(0)
    head = fileobj.read(512)
    fileobj.seek(0)
    if head[:2] == b"\x1f\x8b" or head[257:262] == b"ustar":
        return "tar"
    if head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        raise InvalidInput(
            f"'{source_name}' is compressed with bzip2 or xz, which the portal does not unpack. "
            "Compress it as .tar.gz or .zip instead.",
            field="file",
        )
    if zipfile.is_zipfile(fileobj):
        fileobj.seek(0)
        return "zip"
    fileobj.seek(0)
    if len(head) == 512:
        try:
            tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
        except (tarfile.EmptyHeaderError, tarfile.EOFHeaderError):
            raise _empty(source_name)  # a tar of nothing but its end-of-archive blocks
        except tarfile.HeaderError:
            pass
        else:
            return "tar"  # an old (pre-POSIX) tar: no magic, but a valid header checksum
    raise _not_an_archive(source_name)


@dataclass(frozen=True, slots=True)
class ZipPlace:
    """Where a zip entry's bytes lie in the archive file, as its table of contents says: what
    read_zip_entry needs, small enough to send to another process that maps the file too."""

    offset: int  # of its local header
    method: int
    packed: int  # bytes as stored
    size: int  # bytes once unpacked, as declared
    crc: int
    flags: int
    name: str  # as zipfile decoded it from the table of contents

    @classmethod
    def of(cls, info: zipfile.ZipInfo) -> ZipPlace:
        return cls(
            info.header_offset,
            info.compress_type,
            info.compress_size,
            info.file_size,
            info.CRC,
            info.flag_bits,
            info.orig_filename,
        )


def read_zip_entry(mapped: Any, place: ZipPlace, *, limit: int) -> bytes | None:
    """A plain entry's bytes straight from the mapped archive, or None for zipfile to read.

    Plain: its local header agrees with the table of contents (signature, name), it is stored
    or deflated, not encrypted, within `limit`, and unpacks to exactly its declared size with
    its declared CRC-32: then zipfile would return these very bytes, at about three times the
    cost (its reader is Python; ISA-L inflates and checks faster). It never unpacks more than
    the declared size. Any other entry, damaged, hostile or merely unusual, is zipfile's, which
    says what is wrong with it (ArchiveReader.read, ArchiveReader.read_entry).
    """
    if (
        place.flags & ~_PLAIN_ZIP_FLAGS
        or place.method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        or place.size > limit
    ):
        return None
    at = place.offset
    header = mapped[at : at + _LOCAL_HEADER.size]
    if len(header) != _LOCAL_HEADER.size:
        return None
    fields = _LOCAL_HEADER.unpack(header)
    signature, flags, name_size, extra_size = fields[0], fields[3], fields[10], fields[11]
    if signature != b"PK\x03\x04":
        return None
    start = at + _LOCAL_HEADER.size
    try:
        name = mapped[start : start + name_size].decode("utf-8" if flags & 0x800 else "cp437")
    except UnicodeDecodeError:
        return None
    if name != place.name:
        return None
    start += name_size + extra_size
    packed = mapped[start : start + place.packed]
    if len(packed) != place.packed:
        return None
    if place.method == zipfile.ZIP_STORED:
        data = packed
    else:
        inflater = isal_zlib.decompressobj(-15)
        try:
            data = inflater.decompress(packed, place.size + 1)
        except isal_zlib.error:
            return None
        if not inflater.eof:
            return None
    if len(data) != place.size or isal_zlib.crc32(data) != place.crc:
        return None
    return data


class MappedFile:
    """A read-only file served by a memory map: what zipfile, tarfile and gzip use of a file.

    zipfile seeks and asks for its position around every entry it reads; on a mapped file
    those are memory operations, not system calls (three per image), and ArchiveReader takes
    a plain zip entry's bytes straight from the map.
    """

    def __init__(self, mapped: mmap.mmap) -> None:
        self.mapped = mapped
        self.read = mapped.read
        self.seek = mapped.seek
        self.tell = mapped.tell

    def seekable(self) -> bool:
        return True


class ArchiveReader:
    """One uploaded archive, read in passes: `scan()` lists it, `read(scan)` yields images."""

    def __init__(self, fileobj: BinaryIO, *, limits: Limits, source_name: str) -> None:
        self.fileobj = fileobj
        self._zip_file: zipfile.ZipFile | None = None  # its table of contents, read once
        self._mapped = fileobj.mapped if isinstance(fileobj, MappedFile) else None
        self.limits = limits
        self.source_name = source_name
        self.size = _size_of(fileobj)
        self.kind = detect_kind(fileobj, source_name=source_name)

    def _budget(self) -> Budget:
        return Budget(self.limits, archive_size=self.size, source_name=self.source_name)

    def _too_many(self, count: int, exact: bool) -> PayloadTooLarge:
        what = f"has {count}" if exact else f"has more than {self.limits.max_entries}"
        return PayloadTooLarge(
            f"'{self.source_name}' {what} entries; the limit is {self.limits.max_entries}. "
            "Split it into several uploads.",
            field="file",
        )

    # --- zip ----------------------------------------------------------------------------------

    def _zip(self) -> zipfile.ZipFile:
        """The zip archive: scan() and read() share its table of contents, read once (for
        thousands of entries that takes as long as unpacking them)."""
        if self._zip_file is None:
            self._zip_file = self._open_zip()
        return self._zip_file

    def _open_zip(self) -> zipfile.ZipFile:
        self.fileobj.seek(0)
        try:
            archive = zipfile.ZipFile(self.fileobj)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise InvalidInput(
                f"'{self.source_name}' is a damaged zip archive ({exc}). Create it again and "
                "upload it once more.",
                field="file",
            )
        infos = archive.infolist()
        if len(infos) > self.limits.max_entries:
            archive.close()
            raise self._too_many(len(infos), exact=True)
        if not infos:
            archive.close()
            raise _empty(self.source_name)
        return archive

    def _zip_read(
        self,
        archive: zipfile.ZipFile,
        info: zipfile.ZipInfo,
        *,
        limit: int,
        budget: Budget,
        mapped: bool = True,
    ) -> bytes:
        data = self._zip_read_mapped(info, limit=limit) if mapped else None
        if data is not None:
            budget.add(len(data))
            return data
        try:
            with archive.open(info) as stream:
                return _read_stream(stream, limit=limit, budget=budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise UnreadableEntry(f"damaged entry in the zip archive ({exc})")
        except (RuntimeError, NotImplementedError) as exc:
            # zipfile raises these for encrypted entries and unsupported compression methods.
            raise UnreadableEntry(f"cannot be unpacked ({exc})")

    def _zip_read_mapped(self, info: zipfile.ZipInfo, *, limit: int) -> bytes | None:
        if self._mapped is None:
            return None
        return read_zip_entry(self._mapped, ZipPlace.of(info), limit=limit)

    def _zip_members(self, archive: zipfile.ZipFile) -> Iterator[tuple[_Member, Any]]:
        for index, info in enumerate(archive.infolist()):
            yield _Member(_clean_name(_zip_name(info)), _zip_kind(info), index), info

    # --- tar ----------------------------------------------------------------------------------

    def _tar_stream(self, budget: Budget) -> tuple[tarfile.TarFile, _CountingReader]:
        self.fileobj.seek(0)
        raw: Any = self.fileobj
        if self.fileobj.read(2) == b"\x1f\x8b":
            self.fileobj.seek(0)
            raw = gzip.GzipFile(fileobj=self.fileobj, mode="rb")
        self.fileobj.seek(0)
        counting = _CountingReader(raw, budget, self.source_name)
        counting.headers_begin()
        try:
            tar = tarfile.open(
                fileobj=counting, mode="r|", encoding="utf-8", errors="surrogateescape"
            )
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            if "empty file" in str(exc) or isinstance(exc, tarfile.EmptyHeaderError):
                raise _empty(self.source_name)
            raise _not_an_archive(self.source_name, f" ({exc})")
        return tar, counting

    def _tar_damaged(self, exc: BaseException) -> InvalidInput:
        return InvalidInput(
            f"'{self.source_name}' is a damaged or incomplete tar archive (cut off during a "
            f"download?): {exc}. Create it again and upload it once more.",
            field="file",
        )

    def _tar_members(self, budget: Budget) -> Iterator[tuple[_Member, Any]]:
        """Each member in stream order with a reader of its data (None when it has none).

        The caller may read some of the data; the rest is read (and counted) before the next
        member. Nothing is ever sought back.
        """
        tar, counting = self._tar_stream(budget)
        count = 0
        try:
            while True:
                member = tar.next()
                counting.headers_end()
                if member is None:
                    break
                count += 1
                if count > self.limits.max_entries:
                    raise self._too_many(count, exact=False)
                kind = _tar_kind(member)
                stream = None
                pending = 0
                if kind == "sparse":
                    # Reading it would unfold its holes into zeros; let tarfile step over it.
                    pending = sum(size for _offset, size in member.sparse or ())
                elif member.size:
                    if member.size > budget.remaining():
                        budget.add(member.size)  # raises: more than the archive may unpack to
                    stream = tar.extractfile(member)
                yield _Member(_clean_name(_tar_name(member)), kind, member.offset), stream
                if stream is not None:
                    _drain(stream)
                counting.headers_begin(pending)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise self._tar_damaged(exc)
        if count == 0:
            raise _empty(self.source_name)

    def _tar_read(self, stream: Any, *, limit: int) -> bytes:
        if stream is None:
            return b""
        try:
            # The tar's reader counts the unpacked bytes against the budget.
            return _read_stream(stream, limit=limit, budget=None)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise self._tar_damaged(exc)

    # --- passes -------------------------------------------------------------------------------

    def scan(self) -> Scan:
        """List the archive: images with their labels, skipped entries, the manifest."""
        members: list[tuple[_Member, tuple[str, list[str]] | Skipped | None]] = []
        csv_bytes: dict[str, bytes | Skipped] = {}
        budget = self._budget()

        def note(member: _Member, read_csv: Any) -> None:
            classified = _classify(member)
            members.append((member, classified))
            if isinstance(classified, tuple) and classified[0] == "csv":
                path = "/".join(classified[1])
                if len(classified[1]) <= 2:  # a manifest sits at the root or one folder down
                    try:
                        csv_bytes.setdefault(path, read_csv())
                    except (EntryTooLarge, UnreadableEntry) as exc:
                        csv_bytes.setdefault(path, Skipped(path, f"manifest {exc.reason}"))

        if self.kind == "zip":
            archive = self._zip()
            for member, info in self._zip_members(archive):
                note(
                    member,
                    lambda info=info: self._zip_read(
                        archive, info, limit=MANIFEST_MAX_BYTES, budget=budget
                    ),
                )
        else:
            for member, stream in self._tar_members(budget):
                note(member, lambda stream=stream: self._tar_read(stream, limit=MANIFEST_MAX_BYTES))
        return _resolve(members, csv_bytes, kind=self.kind, source_name=self.source_name)

    def zip_places(self, scan: Scan) -> list[ZipPlace] | None:
        """Where each image of `scan` lies in a memory-mapped zip, for processes that read the
        plain ones themselves (read_zip_entry) from their own map of the same file; None for a
        tar, or an archive that is not mapped. Whoever reads them counts the bytes unpacked
        against budget(), and hands the others to read_entry()."""
        if self.kind != "zip" or self._mapped is None:
            return None
        infos = self._zip().infolist()
        return [ZipPlace.of(infos[entry.key]) for entry in scan.entries]

    def budget(self) -> Budget:
        """The count of bytes unpacked for one pass over the archive's images."""
        return self._budget()

    def read_entry(self, entry: Entry, *, budget: Budget) -> bytes | Skipped:
        """One image of a zip's scan, read by zipfile: the bytes, or why they cannot be had."""
        info = self._zip().infolist()[entry.key]
        try:
            return self._zip_read(
                self._zip(), info, limit=self.limits.max_entry_bytes, budget=budget, mapped=False
            )
        except (EntryTooLarge, UnreadableEntry) as exc:
            return Skipped(entry.name, exc.reason)

    def read(self, scan: Scan) -> Iterator[tuple[Entry, bytes] | Skipped]:
        """The bytes of each image of `scan`, in archive order; unreadable ones are skipped."""
        limit = self.limits.max_entry_bytes
        budget = self._budget()
        if self.kind == "zip":
            archive = self._zip()
            infos = archive.infolist()
            for entry in scan.entries:
                try:
                    data = self._zip_read(archive, infos[entry.key], limit=limit, budget=budget)
                except (EntryTooLarge, UnreadableEntry) as exc:
                    yield Skipped(entry.name, exc.reason)
                    continue
                yield entry, data
            return
        wanted = {entry.key: entry for entry in scan.entries}
        for member, stream in self._tar_members(budget):
            entry = wanted.get(member.key)
            if entry is None:
                continue
            try:
                data = self._tar_read(stream, limit=limit)
            except EntryTooLarge as exc:
                yield Skipped(entry.name, exc.reason)
                continue
            yield entry, data


# --- labels and the manifest --------------------------------------------------------------------


@dataclass
class _Manifest:
    path: str
    rows: dict[str, tuple[str, str | None, int]] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)  # file -> row of a rejected row
    problems: list[Skipped] = field(default_factory=list)
    has_split: bool = False


def _root_of(paths: list[list[str]]) -> str:
    """The folder everything sits in ("" or "name/"): zipping a folder often adds one."""
    tops = {parts[0] for parts in paths}
    if len(tops) == 1 and all(len(parts) > 1 for parts in paths):
        return tops.pop() + "/"
    return ""


def _choose_manifest(csvs: list[str], root: str) -> tuple[str | None, list[Skipped]]:
    """The manifest among the archive's CSV files: the one at its root (or manifest.csv)."""
    at_root = sorted(p for p in csvs if posixpath.dirname(p) + "/" == root or "/" not in p)
    chosen = at_root[0] if len(at_root) == 1 else None
    if len(at_root) > 1:
        named = [p for p in at_root if posixpath.basename(p).lower() == "manifest.csv"]
        chosen = named[0] if len(named) == 1 else None
    skipped = []
    for path in csvs:
        if path == chosen:
            continue
        if path in at_root and chosen is None:
            reason = "several CSV files at the archive root: name the manifest manifest.csv"
        else:
            reason = "CSV file that is not the manifest: ignored"
        skipped.append(Skipped(path, reason))
    return chosen, skipped


def _resolve(
    members: list[tuple[_Member, tuple[str, list[str]] | Skipped | None]],
    csv_bytes: dict[str, bytes | Skipped],
    *,
    kind: str,
    source_name: str,
) -> Scan:
    """Turn the classified members into labelled images (by manifest or by folder)."""
    skipped: list[Skipped] = []
    images: dict[str, tuple[_Member, list[str]]] = {}
    csvs: dict[str, list[str]] = {}
    present: set[str] = set()  # every file path in the archive, usable or not
    for member, classified in members:
        if classified is None:
            continue
        present.add("/".join(_parts(member.name)))
        if isinstance(classified, Skipped):
            skipped.append(classified)
            continue
        what, parts = classified
        path = "/".join(parts)
        if path in images or path in csvs:
            reason = "the archive holds this path twice: the first copy was used"
            skipped.append(Skipped(member.name, reason))
        elif what == "image":
            images[path] = (member, parts)
        else:
            csvs[path] = parts
    root = _root_of([parts for _member, parts in images.values()] + list(csvs.values()))
    chosen, ignored = _choose_manifest(list(csvs), root)
    skipped.extend(ignored)

    entries: list[Entry] = []
    manifest: _Manifest | None = None
    if chosen is not None:
        manifest = _parse_manifest(
            _manifest_bytes(csv_bytes, chosen),
            path=chosen,
            images=set(images),
            present=present,
            root=root,
            source_name=source_name,
        )
        skipped.extend(manifest.problems)
        listed_in = posixpath.basename(chosen)
        for path, (member, _unused) in images.items():
            row = manifest.rows.get(path)
            if row is not None:
                entries.append(Entry(member.name, row[0], row[1], member.key))
            elif path in manifest.rejected:
                reason = f"its row in {listed_in} (row {manifest.rejected[path]}) is unusable"
                skipped.append(Skipped(member.name, reason))
            else:
                reason = f"not listed in {listed_in}: add a row for it to use it"
                skipped.append(Skipped(member.name, reason))
    else:
        for member, parts in images.values():
            label = parts[-2].strip()[:200] if len(parts) > 1 else ""
            if label:
                entries.append(Entry(member.name, label, None, member.key))
            else:
                reason = "not inside a class folder: put it in a folder named after its class"
                skipped.append(Skipped(member.name, reason))
    entries.sort(key=lambda e: e.key)  # archive order, whatever the manifest's order
    if not entries:
        if manifest is not None:
            first = "; ".join(p.reason for p in manifest.problems[:3])
            raise InvalidInput(
                f"The manifest {manifest.path} in '{source_name}' has no usable row"
                + (f" ({first})" if first else "")
                + ". Each row needs a file (its path in the archive) and a label.",
                field="file",
            )
        raise InvalidInput(
            f"'{source_name}' contains no images in class folders. Put each class's images in "
            "a folder named after the class, e.g. cat/a.jpg, dog/b.png, or add a manifest.csv "
            "with the columns file,label.",
            field="file",
        )
    return Scan(
        kind=kind,
        entries=entries,
        skipped=skipped,
        manifest=manifest.path if manifest else None,
        manifest_has_split=bool(manifest and manifest.has_split),
    )


def _manifest_bytes(csv_bytes: dict[str, bytes | Skipped], path: str) -> bytes:
    data = csv_bytes.get(path, b"")
    if isinstance(data, Skipped):
        raise InvalidInput(
            f"The manifest {path} cannot be read: {data.reason}. Keep it under "
            f"{human_size(MANIFEST_MAX_BYTES)}.",
            field="file",
        )
    return data


def _sniff_delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _manifest_path(value: str) -> str | None:
    value = _clean_name(value.strip().replace("\\", "/"))
    if not value or value.startswith("/") or _DRIVE.match(value) or ".." in _parts(value):
        return None
    if any(ord(c) < 32 for c in value):
        return None
    return "/".join(_parts(value))


def _parse_manifest(
    data: bytes,
    *,
    path: str,
    images: set[str],
    present: set[str],
    root: str,
    source_name: str,
) -> _Manifest:
    """Read a manifest: a header naming file and label (and split), then a row per image.

    Rows are numbered as a spreadsheet shows them (the header is row 1). A row that cannot be
    used is listed with its number and why; a manifest without a usable header fails whole.
    """
    manifest = _Manifest(path=path)

    def problem(row: int, reason: str) -> None:
        manifest.problems.append(Skipped(f"{path} row {row}", f"row {row}: {reason}"))

    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(f"The manifest {path} in '{source_name}' {reason}", field="file")

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise refuse(
            f"is not UTF-8 text (byte {exc.start}). Save it as 'CSV UTF-8' and upload the "
            "archive again."
        )
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text)))
    except csv.Error as exc:
        raise refuse(f"is not a readable CSV file ({exc}). Save it again as CSV.")
    numbered = [(n, row) for n, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if not numbered:
        raise refuse("is empty. Give it a header row file,label(,split) and a row per image.")
    header_row, header = numbered[0]
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = _COLUMNS.get(cell.strip().lower())
        if key is None:
            problem(header_row, f"unknown column '{cell.strip()}' ignored; use file, label, split")
        elif key in columns:
            problem(header_row, f"column '{cell.strip()}' appears twice; the first one is used")
        else:
            columns[key] = index
    if "file" not in columns or "label" not in columns:
        raise refuse(
            f"has no header row naming the columns file and label (row {header_row} reads "
            f"{', '.join(header)[:200]!r}). Make its first row file,label or file,label,split."
        )
    manifest.has_split = "split" in columns
    seen: dict[str, int] = {}
    for number, row in numbered[1:]:
        cells = list(row)
        while len(cells) > len(header) and not cells[-1].strip():
            cells.pop()  # spreadsheets like to end rows with empty cells
        if len(cells) != len(header):
            problem(number, f"has {len(cells)} fields; the header has {len(header)}")
            continue
        raw_file = cells[columns["file"]].strip()
        file = _manifest_path(raw_file)
        if file is None:
            problem(number, f"'{raw_file}' is not a usable path (no '..', absolute or empty)")
            continue
        resolved = root + file if root + file in present else file
        if resolved in seen:
            problem(number, f"'{file}' is already listed on row {seen[resolved]}")
            continue
        seen[resolved] = number
        if resolved not in present:
            problem(number, f"'{file}' is missing from the archive")
            continue
        if resolved not in images:
            problem(number, f"'{file}' is not a usable image (see its own entry)")
            continue
        label = _clean_name(cells[columns["label"]].strip())
        if not label:
            problem(number, f"no label for '{file}'")
            manifest.rejected[resolved] = number
            continue
        split = None
        if manifest.has_split:
            value = cells[columns["split"]].strip()
            split = SPLIT_NAMES.get(value.lower())
            if split is None:
                problem(number, f"split '{value}' is not train, validation or test")
                manifest.rejected[resolved] = number
                continue
        manifest.rows[resolved] = (label[:200], split, number)
    return manifest


# --- the upload's front door ------------------------------------------------------------------


def inspect_archive(fileobj: BinaryIO, *, max_entries: int, source_name: str) -> str:
    """Check an uploaded archive before it is kept; returns its kind ("zip" or "tar").

    Zip archives are judged by their table of contents (and manifest); tar archives are read
    through once as a stream, so bombs and damage are refused at the door too.
    """
    reader = ArchiveReader(
        fileobj, limits=Limits.from_settings(max_entries=max_entries), source_name=source_name
    )
    reader.scan()
    fileobj.seek(0)
    return reader.kind
