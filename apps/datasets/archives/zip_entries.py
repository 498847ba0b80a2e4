"""Reading a plain zip entry straight from a memory-mapped archive, in any process.

Django-free and small: the decoding processes import it (through apps.datasets.canonical)
to read the entries the ingesting process points them at, each from its own map of the file.
"""

from __future__ import annotations

import mmap
import struct
import zipfile
from dataclasses import dataclass
from typing import Any

from isal import isal_zlib

#: general-purpose flags a zip entry read straight from a mapped archive may have: deflate
#: options, sizes in a data descriptor, UTF-8 name. Anything else is zipfile's to judge.
_PLAIN_ZIP_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader


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
