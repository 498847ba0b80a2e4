"""The canonical form of images and the pack files the decoding processes write: plain tests of
apps.datasets.canonical over bytes in memory, no database."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from apps.datasets import canonical
from apps.datasets.canonical import Destination, canonicalize, store_batch
from tests.support.archives import noise_png, shape


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
