"""The shared synthetic data generator (tests/support/shapes.py) behaves as documented."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.shapes import (
    SHAPE_CLASSES,
    image_bytes,
    make_class_zip,
    make_shape_image,
    write_class_folders,
)


def test_make_shape_image_is_seeded() -> None:
    first = make_shape_image("circle", np.random.default_rng(9), 32)
    second = make_shape_image("circle", np.random.default_rng(9), 32)
    assert first.mode == "RGB"
    assert first.size == (32, 32)
    assert first.tobytes() == second.tobytes()
    with pytest.raises(ValueError):
        make_shape_image("hexagon", np.random.default_rng(0))


def test_write_class_folders(tmp_path: Path) -> None:
    files = write_class_folders(tmp_path, per_class=2, seed=4)
    assert files == {f"{label}/{label}_{i}.png": label for label in SHAPE_CLASSES for i in range(2)}
    for relative in files:
        with Image.open(tmp_path / relative) as image:
            assert image.format == "PNG"
    jpegs = write_class_folders(tmp_path / "jpg", per_class=1, ext=".jpg", classes=["square"])
    assert list(jpegs) == ["square/square_0.jpg"]


def test_zip_matches_folders_and_is_reproducible(tmp_path: Path) -> None:
    extra = {"notes/readme.txt": b"hello", "circle/broken.png": b"\x89PNG nope"}
    archive = make_class_zip(per_class=2, seed=4, extra_entries=extra)
    assert archive == make_class_zip(per_class=2, seed=4, extra_entries=extra)
    files = write_class_folders(tmp_path, per_class=2, seed=4)
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        names = opened.namelist()
        assert names == [*files, *extra]
        for relative in files:
            assert opened.read(relative) == (tmp_path / relative).read_bytes()
        assert opened.read("notes/readme.txt") == b"hello"


def test_image_bytes() -> None:
    image = Image.new("RGB", (4, 4), (1, 2, 3))
    assert image_bytes(image).startswith(b"\x89PNG")
    assert image_bytes(image, "JPEG").startswith(b"\xff\xd8")
