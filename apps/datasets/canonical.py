"""Uploaded image bytes in, canonical PNG + thumbnail bytes out. No Django here.

Ingestion decodes images in worker processes (see apps.datasets.ingest): this module is what
they import, so it must stay free of Django and the ORM (it imports only Pillow, numpy, ISA-L,
workers.ml.images and apps.datasets.archives.zip_entries to read zip entries) and trade in
bytes and small values, which cross a process boundary cheaply.

The stored form of every image is a PNG re-encoded from the decoded pixels, never the uploaded
bytes: a file that is both an image and something else (a polyglot with a trailing script,
metadata with a payload) leaves only its pixels behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import mmap
import os
import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from isal import isal_zlib
from PIL import Image

from apps.datasets.archives.zip_entries import ZipPlace, read_zip_entry
from workers.ml.images import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image

# Pillow imports its format plugins on the first image it opens, some 30 ms. Decoding processes
# fork from a server that imported this module: done here, each of them starts with them.
Image.init()

#: longest side of a thumbnail; an image no larger than this is its own thumbnail
THUMBNAIL_SIDE = 128
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# How the canonical PNG is written (below) decides every content hash: changing it, items
# stored before are no longer recognised as duplicates of the same pixels uploaded again.
_IDAT_AT = len(PNG_SIGNATURE) + 25  # the IDAT chunk follows the signature and IHDR
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KB window, no dictionary, "fastest" (checksum % 31 == 0)
_STORED_BLOCK = 65535  # the most bytes a deflate stored block holds
WEBP_QUALITY = 80
#: a pack's appended images are written once this many bytes wait (and when it is closed)
PACK_WRITE_BYTES = 4 * 1024 * 1024
_PACK_WRITE_BUFFERS = 512  # well under IOV_MAX (1024), the most buffers one writev takes

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


@dataclass(frozen=True)
class Canonical:
    """One decoded image in its stored form."""

    png: bytes | bytearray  # bytearray as encode_canonical_png builds it in place
    #: a WebP of at most THUMBNAIL_SIDE pixels a side; None when the image is that small already
    thumbnail: bytes | None
    sha256: str  # of `png`: the same pixels always give the same bytes, hence the same hash
    width: int
    height: int
    original_format: str  # what the uploaded bytes really are, whatever their extension said


@dataclass(frozen=True, slots=True)
class Stored:
    """One decoded image, already appended to its batch's pack file by the process that decoded
    it (see store_batch): what the ingestion needs to make its row."""

    sha256: str
    #: the batch whose pack holds the image (Destination.pack_name), and where in it
    pack: int
    png_offset: int
    png_bytes: int
    #: where the thumbnail is in the pack; None when the image is its own thumbnail
    thumbnail_offset: int | None
    thumbnail_bytes: int | None
    width: int
    height: int
    original_format: str
    #: bytes this image added to the pack: 0 when the same pixels came earlier in the batch
    written: int


@dataclass(frozen=True, slots=True)
class OverAllowance:
    """An image left unstored because its bytes would take the ingestion past its Allowance
    (the organization's storage quota): the ingestion stops there."""

    #: the bytes it would have added (0: refused because the ingestion had stopped already)
    needed: int


class Allowance:
    """The bytes one ingestion may write, shared by its decoding processes.

    Each process reserves an image's bytes here before it appends them to a pack, so the
    ingestion stops before it writes what would take the organization over its storage
    quota, however many processes decode at once. The first refusal stops it: every later
    reservation is refused too. The numbers live in shared memory made with the decoding
    pool's multiprocessing context; a pool's processes receive it when they start (pool
    initializer, see apps.datasets.ingest.decoding), the ingesting process uses it directly.
    """

    # [limit (-1: none), bytes reserved, stopped (0/1), bytes of the first refused image]
    _LIMIT, _USED, _STOPPED, _REFUSED = range(4)

    def __init__(self, limit: int | None, *, context: Any = None) -> None:
        import multiprocessing

        self._shared = (context or multiprocessing).Array(
            "q", [-1 if limit is None else limit, 0, 0, 0]
        )

    def reserve(self, size: int) -> bool:
        """Count `size` more bytes written if they fit; False (and stopped) if they do not."""
        with self._shared.get_lock():
            limit, used, stopped = self._shared[: self._STOPPED + 1]
            if stopped:
                return False
            if limit >= 0 and used + size > limit:
                self._shared[self._STOPPED] = 1
                self._shared[self._REFUSED] = size
                return False
            self._shared[self._USED] = used + size
            return True

    def refuse(self, size: int) -> None:
        """Stop the ingestion: `size` bytes were found not to fit."""
        with self._shared.get_lock():
            if not self._shared[self._STOPPED]:
                self._shared[self._STOPPED] = 1
                self._shared[self._REFUSED] = size

    def set_limit(self, limit: int | None) -> None:
        """Change the bytes the ingestion may write in all (others' use was read again)."""
        with self._shared.get_lock():
            self._shared[self._LIMIT] = -1 if limit is None else limit

    @property
    def used(self) -> int:
        """Bytes reserved so far (written, or about to be)."""
        return int(self._shared[self._USED])

    @property
    def stopped(self) -> bool:
        return bool(self._shared[self._STOPPED])

    @property
    def refused(self) -> int:
        """The bytes of the image that did not fit (0 while none was refused)."""
        return int(self._shared[self._REFUSED])


#: the Allowance of this decoding process's ingestion (set when a pool's process starts)
_process_allowance: Allowance | None = None


def use_allowance(allowance: Allowance | None) -> None:
    """Pool initializer: the Allowance the work functions of this process reserve from."""
    global _process_allowance
    _process_allowance = allowance


@dataclass(frozen=True)
class Destination:
    """A local folder of the portal's storage where decoding processes write pack files.

    Creating a file costs the kernel more than writing an image's bytes (0.05 ms at best on
    ext4, 0.3 to 0.7 ms after a mass deletion nearby), so the images of one batch (up to
    BATCH_IMAGES of them) go into one file, <folder>/<prefix><batch>.pack, one after the other:
    each image's canonical PNG, then its thumbnail if it has one. The item rows say where each
    lies; nothing else is in the file.
    """

    folder: str
    prefix: str = ""
    file_mode: int | None = None

    def pack_name(self, batch: int) -> str:
        """The pack's file name in `folder`."""
        return f"{self.prefix}{batch:05d}.pack"

    def pack(self, batch: int) -> str:
        return os.path.join(self.folder, self.pack_name(batch))


class _Pack:
    """A pack file being written: opened on its first image, appended to, closed once."""

    def __init__(self, destination: Destination, batch: int) -> None:
        self.destination = destination
        self.batch = batch
        self.size = 0
        self.at: dict[str, Stored] = {}  # sha256 -> the image stored for it in this pack
        self._descriptor: int | None = None
        self._pending: list[bytes | bytearray] = []  # appended, not written yet
        self._pending_bytes = 0

    def adds(self, canonical: Canonical) -> int:
        """The bytes add(canonical) would append: none for pixels this pack holds already."""
        if canonical.sha256 in self.at:
            return 0
        return len(canonical.png) + len(canonical.thumbnail or b"")

    def add(self, canonical: Canonical) -> Stored:
        digest = canonical.sha256
        earlier = self.at.get(digest)
        if earlier is not None:
            return dataclasses.replace(earlier, written=0)
        png_offset = self._append(canonical.png)
        thumbnail_offset = None
        if canonical.thumbnail is not None:
            thumbnail_offset = self._append(canonical.thumbnail)
        stored = Stored(
            sha256=digest,
            pack=self.batch,
            png_offset=png_offset,
            png_bytes=len(canonical.png),
            thumbnail_offset=thumbnail_offset,
            thumbnail_bytes=None if canonical.thumbnail is None else len(canonical.thumbnail),
            width=canonical.width,
            height=canonical.height,
            original_format=canonical.original_format,
            written=self.size - png_offset,
        )
        self.at[digest] = stored
        return stored

    def _append(self, data: bytes | bytearray) -> int:
        offset = self.size
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.size += len(data)
        if self._pending_bytes >= PACK_WRITE_BYTES or len(self._pending) >= _PACK_WRITE_BUFFERS:
            self._write_pending()
        return offset

    def _write_pending(self) -> None:
        """Write what was appended in one system call: one write per image cost as much as
        copying its bytes (ext4 reserves blocks and updates the inode on every call)."""
        if not self._pending:
            return
        if self._descriptor is None:
            self._descriptor = _create(self.destination.pack(self.batch))
        written = os.writev(self._descriptor, self._pending)
        if written < self._pending_bytes:  # cut short (a signal, a full disk): the rest, plainly
            view = memoryview(b"".join(self._pending))[written:]
            while view:
                view = view[os.write(self._descriptor, view) :]
        self._pending.clear()
        self._pending_bytes = 0

    def close(self) -> None:
        try:
            self._write_pending()
        finally:
            self._close()

    def _close(self) -> None:
        if self._descriptor is None:
            return
        try:
            if self.destination.file_mode is not None:
                os.fchmod(self._descriptor, self.destination.file_mode)
        finally:
            os.close(self._descriptor)
            self._descriptor = None


def _create(path: str) -> int:
    """Open `path` for writing from its start, creating its folder if need be."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    try:
        return os.open(path, flags, 0o666)
    except FileNotFoundError:  # the first pack of its folder
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, flags, 0o666)


def sniff_format(data: bytes) -> str:
    """The image format the bytes start with ("JPEG", "PNG", ...), or "" if none we accept."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return ""


def encode_canonical_png(image: Image.Image) -> bytearray:
    """8-bit RGB pixels as PNG bytes, no metadata, fixed settings: same pixels, same bytes.

    The pixels are stored, not compressed: rows without a filter, in deflate's "stored"
    blocks of whole rows. Compressing them cost as much CPU time as decoding the upload (even
    ISA-L's fastest level over a "Sub" filter) to save a third to a half of the bytes on
    photos, less on noisy images. What is left is copying the rows into place and two checksums
    (ISA-L's, several times faster than zlib's), about a tenth of that. Any PNG reader reads
    the file; the bytes are built in place, with one copy of the pixels besides the image.

    How these bytes are laid out decides every content hash (see _IDAT_AT): a change here
    must leave them exactly as they are, which tests/apps/datasets/test_canonical.py checks.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    row = 1 + width * 3  # the filter byte (0: none), then the pixels
    per_block = _STORED_BLOCK // row  # whole rows in a stored block
    blocks = -(-height // per_block) if per_block else height * -(-row // _STORED_BLOCK)
    idat_size = 2 + 5 * blocks + row * height + 4  # zlib header, blocks, Adler-32
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    out = bytearray(_IDAT_AT + 8 + idat_size + 4 + len(_IEND))
    out[:_IDAT_AT] = PNG_SIGNATURE + _chunk(b"IHDR", header)
    out[_IDAT_AT : _IDAT_AT + 10] = struct.pack(">I", idat_size) + b"IDAT" + _ZLIB_HEADER
    at = _IDAT_AT + 10  # where the next stored block goes
    adler = 1
    if per_block:
        # Pillow packs each row followed by a zero byte (the raw encoder's row stride): shifted
        # by one, those zeros are the filter bytes of the rows that follow, so the rows go
        # into place in one copy per block, with no array in between.
        packed = memoryview(image.tobytes("raw", "RGB", row))
        view = memoryview(out)
        for top in range(0, height, per_block):
            rows = min(per_block, height - top)
            start = _stored_block(out, at, rows * row, final=top + rows == height)
            out[start] = 0  # the first row's filter byte
            view[start + 1 : start + rows * row] = packed[top * row : (top + rows) * row - 1]
            adler = isal_zlib.adler32(view[start : start + rows * row], adler)
            at = start + rows * row
    else:  # a row longer than a block (over 21,844 pixels wide) spans several
        pixels = np.asarray(image, dtype=np.uint8).reshape(height, width * 3)
        for y in range(height):
            data = b"\0" + pixels[y].tobytes()
            for offset in range(0, row, _STORED_BLOCK):
                piece = data[offset : offset + _STORED_BLOCK]
                final = y == height - 1 and offset + _STORED_BLOCK >= row
                start = _stored_block(out, at, len(piece), final=final)
                out[start : start + len(piece)] = piece
                at = start + len(piece)
            adler = isal_zlib.adler32(data, adler)
    struct.pack_into(">I", out, at, adler)
    at += 4
    struct.pack_into(">I", out, at, isal_zlib.crc32(memoryview(out)[_IDAT_AT + 4 : at]))
    out[at + 4 :] = _IEND
    return out


def _stored_block(out: bytearray, at: int, size: int, *, final: bool) -> int:
    """Write the header of a stored block of `size` bytes at `at`; where its data goes."""
    out[at] = 1 if final else 0  # BFINAL, BTYPE 00 (stored)
    struct.pack_into("<HH", out, at + 1, size, size ^ 0xFFFF)
    return at + 5


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


_IEND = _chunk(b"IEND", b"")


def canonicalize(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Canonical:
    """Decode untrusted bytes; raises ImageDecodeError with a reason a person can act on.

    An image whose header declares more than `max_pixels` pixels is refused before decoding."""
    # verified, EXIF-rotated, first frame, 8-bit RGB
    image = decode_image(data, max_pixels=max_pixels)
    png = encode_canonical_png(image)
    thumbnail = None
    if max(image.size) > THUMBNAIL_SIDE:
        small = image.copy()
        small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        small.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=2)
        thumbnail = buffer.getvalue()
    return Canonical(
        png=png,
        thumbnail=thumbnail,
        sha256=hashlib.sha256(png).hexdigest(),
        width=image.width,
        height=image.height,
        original_format=sniff_format(data) or "unknown",
    )


def store_batch(
    batch: list[bytes],
    destination: Destination,
    number: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowance: Allowance | None = None,
) -> list[Stored | str | OverAllowance]:
    """canonicalize() over a batch, the images written to pack `number` of `destination` by
    this process: only a few numbers per image go back to the ingesting process.

    The unit of work of an ingestion worker process on local storage. A batch of which no
    image could be read writes no file. Memory holds one decoded image and at most
    PACK_WRITE_BYTES of stored ones waiting to be written. Each image's bytes are reserved
    from `allowance` (by default this process's, see use_allowance) before they are
    appended; one that does not fit is an OverAllowance, and so is every image after it.
    """
    allowance = allowance or _process_allowance
    pack = _Pack(destination, number)
    try:
        return [_store(data, pack, max_pixels, allowance) for data in batch]
    finally:
        pack.close()


def store_zip_entries(
    places: list[ZipPlace],
    *,
    archive: str,
    destination: Destination,
    limit: int,
    number: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allowance: Allowance | None = None,
) -> list[tuple[int, Stored | str | OverAllowance] | None]:
    """store_batch() over entries of the zip archive at `archive`, read by this process from
    its own map of the file: the ingesting process sends where they are, not their bytes.

    Each result is (bytes unpacked, what store_batch gives), or None for an entry that is not
    plain (apps.datasets.archives.zip_entries.read_zip_entry), which the ingesting process
    reads itself.
    """
    allowance = allowance or _process_allowance
    results: list[tuple[int, Stored | str | OverAllowance] | None] = []
    pack = _Pack(destination, number)
    try:
        with (
            open(archive, "rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
        ):
            for place in places:
                data = read_zip_entry(mapped, place, limit=limit)
                results.append(
                    None if data is None else (len(data), _store(data, pack, max_pixels, allowance))
                )
    finally:
        pack.close()
    return results


def _store(
    data: bytes, pack: _Pack, max_pixels: int, allowance: Allowance | None
) -> Stored | str | OverAllowance:
    """canonicalize() `data` and append it to `pack` if its bytes fit the allowance: what the
    row needs, the reason the image was refused, or OverAllowance."""
    if allowance is not None and allowance.stopped:
        return OverAllowance(0)  # the ingestion is stopping: decoding more is wasted
    try:
        canonical = canonicalize(data, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        return exc.reason
    size = pack.adds(canonical)
    if allowance is not None and size and not allowance.reserve(size):
        return OverAllowance(size)
    return pack.add(canonical)


def write_file_once(path: str, data: bytes | bytearray, *, mode: int | None = None) -> bool:
    """Write content-addressed bytes to `path` unless they are there already: one
    create-and-write per new file. Whether this call created the file.

    A file already there with the right size is the same content (its name is its hash). One
    of another size was cut short by a crash, and is replaced whole, atomically. Two processes
    writing the same content at once both end with the whole file in place.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        try:
            descriptor = os.open(path, flags, 0o666)
        except FileNotFoundError:  # the first file of its folder
            os.makedirs(os.path.dirname(path), exist_ok=True)
            descriptor = os.open(path, flags, 0o666)
    except FileExistsError:
        if os.stat(path).st_size != len(data):
            _replace_file(path, data, mode=mode)
        return False
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        if mode is not None:
            os.fchmod(descriptor, mode)
    finally:
        os.close(descriptor)
    return True


def _replace_file(path: str, data: bytes | bytearray, *, mode: int | None) -> None:
    partial = f"{path}.{uuid.uuid4().hex}.partial"
    try:
        with open(partial, "xb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(partial, mode)
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def canonicalize_batch(
    batch: list[bytes], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[Canonical | str | OverAllowance]:
    """canonicalize() over a batch: each result is a Canonical or the reason it was refused.

    The unit of work of an ingestion worker process: batches keep the cost of passing data
    between processes small next to the decoding itself. The ingesting process stores (and
    reserves) these itself; once its ingestion stopped over its allowance the rest are left
    undecoded (OverAllowance).
    """
    results: list[Canonical | str | OverAllowance] = []
    for data in batch:
        if _process_allowance is not None and _process_allowance.stopped:
            results.append(OverAllowance(0))
            continue
        try:
            results.append(canonicalize(data, max_pixels=max_pixels))
        except ImageDecodeError as exc:
            results.append(exc.reason)
    return results
