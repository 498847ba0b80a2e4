"""Reading uploaded archives (zip, tar, tar.gz) safely, in passes: `scan()` lists the images
with their labels and the entries skipped, `read(scan)` yields their bytes.

Nothing here writes a file: entries are read into memory, one at a time, and the caller stores
re-encoded images under names it makes itself, so an entry's name can never choose where bytes
land. Tar archives are read as a stream, once per pass, and never with extractall. Every byte
unpacked is counted against the archive's limits (apps.datasets.archives.limits).
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from apps.core.errors import InvalidInput
from apps.datasets.archives.labels import Entry, Scan, resolve
from apps.datasets.archives.limits import (
    MANIFEST_MAX_BYTES,
    Budget,
    CountingReader,
    EntryTooLarge,
    Limits,
    drain,
    read_stream,
    too_many_entries,
)
from apps.datasets.archives.names import (
    Member,
    Skipped,
    classify,
    clean_name,
    tar_kind,
    tar_name,
    zip_kind,
    zip_name,
)
from apps.datasets.archives.zip_entries import MappedFile, ZipPlace, read_zip_entry

_HOW = "one folder per class, e.g. cat/a.jpg, dog/b.png"


class UnreadableEntry(Exception):
    """An entry whose bytes cannot be unpacked: damaged, encrypted or oddly compressed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
            raise too_many_entries(self.source_name, self.limits, len(infos), exact=True)
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
                return read_stream(stream, limit=limit, budget=budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise UnreadableEntry(f"damaged entry in the zip archive ({exc})")
        except (RuntimeError, NotImplementedError) as exc:
            # zipfile raises these for encrypted entries and unsupported compression methods.
            raise UnreadableEntry(f"cannot be unpacked ({exc})")

    def _zip_read_mapped(self, info: zipfile.ZipInfo, *, limit: int) -> bytes | None:
        if self._mapped is None:
            return None
        return read_zip_entry(self._mapped, ZipPlace.of(info), limit=limit)

    def _zip_members(self, archive: zipfile.ZipFile) -> Iterator[tuple[Member, Any]]:
        for index, info in enumerate(archive.infolist()):
            yield Member(clean_name(zip_name(info)), zip_kind(info), index), info

    # --- tar ----------------------------------------------------------------------------------

    def _tar_stream(self, budget: Budget) -> tuple[tarfile.TarFile, CountingReader]:
        self.fileobj.seek(0)
        raw: Any = self.fileobj
        if self.fileobj.read(2) == b"\x1f\x8b":
            self.fileobj.seek(0)
            raw = gzip.GzipFile(fileobj=self.fileobj, mode="rb")
        self.fileobj.seek(0)
        counting = CountingReader(raw, budget, self.source_name)
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

    def _tar_members(self, budget: Budget) -> Iterator[tuple[Member, Any]]:
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
                    raise too_many_entries(self.source_name, self.limits, count, exact=False)
                kind = tar_kind(member)
                stream = None
                pending = 0
                if kind == "sparse":
                    # Reading it would unfold its holes into zeros; let tarfile step over it.
                    pending = sum(size for _offset, size in member.sparse or ())
                elif member.size:
                    if member.size > budget.remaining():
                        budget.add(member.size)  # raises: more than the archive may unpack to
                    stream = tar.extractfile(member)
                yield Member(clean_name(tar_name(member)), kind, member.offset), stream
                if stream is not None:
                    drain(stream)
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
            return read_stream(stream, limit=limit, budget=None)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise self._tar_damaged(exc)

    # --- passes -------------------------------------------------------------------------------

    def scan(self) -> Scan:
        """List the archive: images with their labels, skipped entries, the manifest."""
        members: list[tuple[Member, tuple[str, list[str]] | Skipped | None]] = []
        csv_bytes: dict[str, bytes | Skipped] = {}
        budget = self._budget()

        def note(member: Member, read_csv: Any) -> None:
            classified = classify(member)
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
        return resolve(members, csv_bytes, kind=self.kind, source_name=self.source_name)

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
