"""Reading stored images back: whole files and slices of pack files."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from apps.datasets.models import DatasetItem
from apps.datasets.stored import StoredSlice, item_read, item_thumbnail_type, open_stored


def test_a_slice_reads_seeks_and_tells_within_its_bytes_only():
    whole = io.BytesIO(b"0123456789abcdef")
    part = StoredSlice(whole, 4, 6)  # "456789"
    assert part.read() == b"456789"
    assert part.read() == b""
    assert part.seek(-2, io.SEEK_END) == 4 and part.read() == b"89"
    assert part.seek(1) == 1 and part.read(2) == b"56" and part.tell() == 3
    assert part.seek(-10, io.SEEK_CUR) == 0 and part.read(100) == b"456789"


def test_a_slice_of_a_file_cut_short_says_so():
    part = StoredSlice(io.BytesIO(b"0123"), 2, 10)
    with pytest.raises(OSError, match="cut short"):
        part.read()


def test_pillow_opens_an_image_inside_a_pack():
    image = io.BytesIO()
    Image.new("RGB", (5, 4), (1, 2, 3)).save(image, format="PNG")
    name = default_storage.save("packs/test.pack", ContentFile(b"x" * 100 + image.getvalue()))
    with open_stored(name, 100, len(image.getvalue())) as handle, Image.open(handle) as opened:
        assert opened.size == (5, 4) and opened.getpixel((0, 0)) == (1, 2, 3)
    with pytest.raises(OSError):
        open_stored("packs/missing.pack", 0, 10)


def test_every_item_reads_back_and_names_its_thumbnail_type(ready_version):
    for item in DatasetItem.all_tenants.filter(version=ready_version):
        png = item_read(item)
        assert png.startswith(b"\x89PNG") and len(png) == item.file_length
        assert item_thumbnail_type(item) == "image/png"  # small: its own thumbnail
        assert item_read(item, "thumbnail") == png
