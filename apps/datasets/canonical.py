"""Uploaded image bytes in, canonical PNG + thumbnail bytes out. No Django here.

Ingestion decodes images in worker processes (see apps.datasets.ingest): this module is what
they import, so it must stay free of Django and the ORM (it imports only Pillow, numpy, ISA-L
and workers.ml.images) and trade in bytes, which cross a process boundary cheaply.

The stored form of every image is a PNG re-encoded from the decoded pixels, never the uploaded
bytes: a file that is both an image and something else (a polyglot with a trailing script,
metadata with a payload) leaves only its pixels behind.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from isal import isal_zlib
from PIL import Image

from workers.ml.images import ImageDecodeError, decode_image

#: longest side of a thumbnail; an image no larger than this is its own thumbnail
THUMBNAIL_SIDE = 128
#: ISA-L deflate level (0-3) of the canonical PNG. Changing how the PNG is written changes
#: every content hash: items stored before would no longer be recognised as duplicates.
PNG_COMPRESS_LEVEL = 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WEBP_QUALITY = 80

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

    png: bytes
    #: a WebP of at most THUMBNAIL_SIDE pixels a side; None when the image is that small already
    thumbnail: bytes | None
    sha256: str  # of `png`: the same pixels always give the same bytes, hence the same hash
    width: int
    height: int
    original_format: str  # what the uploaded bytes really are, whatever their extension said


def sniff_format(data: bytes) -> str:
    """The image format the bytes start with ("JPEG", "PNG", ...), or "" if none we accept."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return ""


def encode_canonical_png(image: Image.Image) -> bytes:
    """8-bit RGB pixels as PNG bytes, no metadata, fixed settings: same pixels, same bytes.

    Compressing is most of what re-encoding costs, as much as decoding the upload. Pillow's
    encoder tries five filters on every row and deflates with zlib; here one "Sub" filter
    (each byte minus the one a pixel to its left) is computed with numpy and deflated by
    ISA-L, several times faster than zlib at about the same size (measured on photos and on
    generated shapes). Rows go in blocks, so a large image never needs a second full copy.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    pixels = np.asarray(image, dtype=np.uint8).reshape(height, width * 3)
    compressor = isal_zlib.compressobj(PNG_COMPRESS_LEVEL)
    parts = []
    step = max(1, (1 << 20) // (width * 3 + 1))  # about 1 MB of rows at a time
    for top in range(0, height, step):
        rows = pixels[top : top + step]
        filtered = np.empty((rows.shape[0], width * 3 + 1), dtype=np.uint8)
        filtered[:, 0] = 1  # filter type Sub
        filtered[:, 1:4] = rows[:, :3]
        np.subtract(rows[:, 3:], rows[:, :-3], out=filtered[:, 4:])  # wraps modulo 256
        parts.append(compressor.compress(filtered.tobytes()))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"".join(
        (PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", b"".join(parts)), _IEND)
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


_IEND = _chunk(b"IEND", b"")


def canonicalize(data: bytes) -> Canonical:
    """Decode untrusted bytes; raises ImageDecodeError with a reason a person can act on."""
    image = decode_image(data)  # verified, EXIF-rotated, first frame, 8-bit RGB
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


def canonicalize_batch(batch: list[bytes]) -> list[Canonical | str]:
    """canonicalize() over a batch: each result is a Canonical or the reason it was refused.

    The unit of work of an ingestion worker process: batches keep the cost of passing data
    between processes small next to the decoding itself.
    """
    results: list[Canonical | str] = []
    for data in batch:
        try:
            results.append(canonicalize(data))
        except ImageDecodeError as exc:
            results.append(exc.reason)
    return results
