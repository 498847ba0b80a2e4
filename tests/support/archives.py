"""Build archives for tests: zip and tar (plain or gzip) with any entry a hostile upload may hold.

Plain Pillow + numpy + the standard library. Entries are (name, bytes) pairs, or TarEntry /
zipfile.ZipInfo for special members (links, devices, odd flags).
"""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.support.shapes import SHAPE_CLASSES, image_bytes, make_class_zip, make_shape_image

__all__ = [
    "TarEntry",
    "bomb_zip",
    "class_images",
    "clear_utf8_flag",
    "noise_png",
    "pixel_bomb",
    "solid_png",
    "shape",
    "symlink_info",
    "tar_bytes",
    "zip_bytes",
]


def shape(label: str = "circle", seed: int = 0, *, size: int = 32, fmt: str = "PNG") -> bytes:
    """One generated image of class `label` (a circle, square or triangle) in format `fmt`."""
    return image_bytes(make_shape_image(label, np.random.default_rng(seed), size), fmt)


def class_images(
    per_class: int = 3, *, classes: tuple[str, ...] = SHAPE_CLASSES, prefix: str = "", seed: int = 0
) -> list[tuple[str, bytes]]:
    """[(f"{prefix}{label}/{label}_{i}.png", png bytes)] with distinct pixels everywhere."""
    return [
        (f"{prefix}{label}/{label}_{i}.png", shape(label, seed * 1000 + k * 100 + i))
        for k, label in enumerate(classes)
        for i in range(per_class)
    ]


def noise_png(side: int, seed: int = 0) -> bytes:
    """Random pixels: barely compressible, about 3 * side**2 bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    return image_bytes(Image.fromarray(pixels, mode="RGB"))


def pixel_bomb(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header declares width x height pixels."""
    data = bytearray(shape())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def solid_png(width: int, height: int, mark: int = 0) -> bytes:
    """A real, valid one-bit PNG of width x height pixels, black but for the first `mark`
    pixels of its top row (so each mark gives other pixels): its zeros compress about a
    thousand times, so 88 megapixels are some ten kilobytes, 264 MB once decoded to RGB."""
    row = bytearray(1 + (width + 7) // 8)  # the filter byte, then the packed bits
    for x in range(min(mark, width)):
        row[1 + x // 8] |= 0x80 >> (x % 8)
    black = b"\x00" * len(row)
    pixels = zlib.compress(bytes(row) + black * (height - 1), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(data, zlib.crc32(kind))
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def bomb_zip(*, width: int, height: int, bombs: int = 12, good_per_class: int = 0) -> bytes:
    """A pixel bomb: `bombs` distinct solid_png images of width x height (kilobytes each, 3
    bytes a pixel once decoded) spread among `good_per_class` small images per class, so that
    they fall into several batches, decoded by several processes at once."""
    good = zipfile.ZipFile(io.BytesIO(make_class_zip(per_class=good_per_class)))
    entries = [(name, good.read(name)) for name in good.namelist()]
    step = max(1, len(entries) // bombs)
    for i in range(bombs):
        label = SHAPE_CLASSES[i % len(SHAPE_CLASSES)]
        entries.insert(i * (step + 1), (f"{label}/bomb_{i}.png", solid_png(width, height, i)))
    return zip_bytes(entries)


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777) << 16
    return info


def zip_bytes(
    entries: list[tuple[str | zipfile.ZipInfo, bytes]],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def clear_utf8_flag(data: bytes) -> bytes:
    """The zip without its 'names are UTF-8' flags, as many zip tools write them."""
    raw = bytearray(data)
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(signature)
        while at != -1:
            raw[at + flag_at + 1] &= ~0x08 & 0xFF  # bit 11 of the little-endian flag word
            at = raw.find(signature, at + 4)
    return bytes(raw)


@dataclass
class TarEntry:
    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    pax: dict[str, str] | None = None


def tar_bytes(
    entries: list[tuple[str, bytes] | TarEntry],
    *,
    gz: bool = False,
    fmt: int = tarfile.PAX_FORMAT,
    encoding: str = "utf-8",
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w:gz" if gz else "w", format=fmt, encoding=encoding
    ) as archive:
        for entry in entries:
            if not isinstance(entry, TarEntry):
                entry = TarEntry(*entry)
            info = tarfile.TarInfo(entry.name)
            info.type = entry.type
            info.linkname = entry.linkname
            info.mtime = 1_577_836_800
            if entry.pax:
                info.pax_headers = dict(entry.pax)
            if entry.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                info.devmajor, info.devminor = 1, 3
            if entry.type == tarfile.REGTYPE:
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
            else:
                archive.addfile(info)
    return buffer.getvalue()
