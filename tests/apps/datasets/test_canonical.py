"""The canonical form of images and the pack files the decoding processes write: plain tests of
apps.datasets.canonical over bytes in memory, no database."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from apps.datasets import canonical
from apps.datasets.canonical import Destination, canonicalize, store_batch
from tests.support.archives import noise_png, shape

#: the hash of the canonical PNG of known pixels, as items stored since pack files hold them
KNOWN_SHA256 = "209b2d841441f3fe779000b7b36389630621f477f67e6cb7442d5ca627cf4421"


def test_the_canonical_png_holds_the_decoded_pixels_and_is_hashed_whole():
    data = shape("circle", 1)
    result = canonicalize(data)
    assert result.sha256 == hashlib.sha256(result.png).hexdigest()
    with Image.open(io.BytesIO(result.png)) as stored, Image.open(io.BytesIO(data)) as upload:
        assert stored.mode == "RGB"
        assert stored.tobytes() == upload.convert("RGB").tobytes()
    # The same pixels always give the same bytes, hence the same hash.
    assert result.png == canonicalize(data).png


def test_a_batch_lands_in_one_pack_where_its_rows_say(tmp_path, monkeypatch):
    # A write threshold below one image: every image is written as soon as it is appended.
    monkeypatch.setattr(canonical, "PACK_WRITE_BYTES", 1)
    destination = Destination(folder=str(tmp_path / "packs"), prefix="a1-")
    images = [shape("circle", 1), noise_png(200, 2), b"not an image", shape("circle", 1)]
    stored = store_batch(images, destination, 3)
    pack = (tmp_path / "packs" / "a1-00003.pack").read_bytes()
    first, big, refused, again = stored
    assert isinstance(refused, str)
    assert again.png_offset == first.png_offset and again.written == 0
    assert first.written + big.written == len(pack)
    for item, data in ((first, images[0]), (big, images[1])):
        png = pack[item.png_offset : item.png_offset + item.png_bytes]
        assert png == canonicalize(data).png
    assert big.thumbnail_offset is not None
    thumbnail = pack[big.thumbnail_offset : big.thumbnail_offset + big.thumbnail_bytes]
    with Image.open(io.BytesIO(thumbnail)) as small:
        assert small.format == "WEBP" and max(small.size) == canonical.THUMBNAIL_SIDE


def test_a_batch_written_at_once_gives_the_same_pack(tmp_path, monkeypatch):
    images = [shape("square", i) for i in range(5)]
    with monkeypatch.context() as patched:
        patched.setattr(canonical, "PACK_WRITE_BYTES", 1)
        store_batch(images, Destination(folder=str(tmp_path / "one-by-one")), 0)
    store_batch(images, Destination(folder=str(tmp_path / "at-once")), 0)
    one_by_one = (tmp_path / "one-by-one" / "00000.pack").read_bytes()
    assert one_by_one == (tmp_path / "at-once" / "00000.pack").read_bytes()


def test_a_batch_of_nothing_readable_writes_no_file(tmp_path):
    results = store_batch([b"junk", b""], Destination(folder=str(tmp_path / "packs")), 0)
    assert results[1] == "the file is empty"
    assert "not a readable image" in results[0]
    assert not (tmp_path / "packs").exists()


def _reference_png(image: Image.Image) -> bytes:
    """The canonical PNG spelt out plainly: unfiltered rows in stored deflate blocks of whole
    rows (at most 65,535 bytes each), no metadata."""
    width, height = image.size
    pixels = image.tobytes()
    row = 1 + 3 * width
    raw = b"".join(b"\0" + pixels[y * 3 * width : (y + 1) * 3 * width] for y in range(height))
    per_block = 65535 // row
    idat = bytearray(b"\x78\x01")
    for top in range(0, height, per_block):
        block = raw[top * row : min(height, top + per_block) * row]
        final = top + per_block >= height
        idat += bytes([final]) + struct.pack("<HH", len(block), len(block) ^ 0xFFFF) + block
    idat += struct.pack(">I", zlib.adler32(raw))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", bytes(idat))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(1, 1), (128, 128), (200, 400), (7, 3000)])
def test_the_canonical_png_keeps_its_exact_bytes(size):
    """Content hashes of stored items depend on these bytes: an image uploaded again must be
    recognised as the same."""
    pixels = np.random.default_rng(size[0]).integers(0, 256, (size[1], size[0], 3), np.uint8)
    image = Image.fromarray(pixels, "RGB")
    assert bytes(canonical.encode_canonical_png(image)) == _reference_png(image)


def test_the_content_hash_of_known_pixels_does_not_change():
    pixels = np.arange(16 * 8 * 3, dtype=np.uint8).reshape(8, 16, 3)
    png = canonical.encode_canonical_png(Image.fromarray(pixels, "RGB"))
    assert hashlib.sha256(png).hexdigest() == KNOWN_SHA256
