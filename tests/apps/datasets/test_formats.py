"""Every image format a customer brings, through an archive, to one canonical RGB PNG item.

Uploads go through the API; ingestion is the real service. Names in any script stay intact, and
a small real data set that ships inside scikit-image goes through the same path.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from apps.core.jobs import JobStatus
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.datasets.services import dataset_version_ingest
from apps.datasets.stored import item_location, item_read
from tests.conftest import zip_upload
from tests.support.archives import clear_utf8_flag, shape, tar_bytes, zip_bytes

WIDTH, HEIGHT = 160, 120  # larger than a thumbnail, so one is made


def picture(variant: int = 0, width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    """A smooth RGB picture (gradients and a block) that survives lossy formats recognisably;
    each variant moves the block, so that no two formats' pictures are exact duplicates."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack(
        [x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=-1
    ).astype(np.uint8)
    top, left = height // 4 + 2 * variant, width // 4 + 3 * variant
    pixels[top : top + height // 4, left : left + width // 4] = (250, 30, 30)
    return Image.fromarray(pixels)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def exif_rotated_jpeg() -> bytes:
    """A JPEG stored sideways (HEIGHT x WIDTH) whose EXIF says: turn me upright."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return encoded(picture().transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif, quality=95)


def two_frame_gif() -> bytes:
    red = Image.new("RGB", (WIDTH, HEIGHT), (255, 0, 0))
    blue = Image.new("RGB", (WIDTH, HEIGHT), (0, 0, 255))
    return encoded(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)


def alpha_png() -> bytes:
    rgba = picture().convert("RGBA")
    alpha = np.full((HEIGHT, WIDTH), 255, dtype=np.uint8)
    alpha[:, : WIDTH // 2] = 0  # the left half fully transparent
    rgba.putalpha(Image.fromarray(alpha))
    return encoded(rgba, "PNG")


def grey16_png() -> bytes:
    values = np.linspace(0, 65535, WIDTH * HEIGHT).reshape(HEIGHT, WIDTH).astype(np.uint16)
    return encoded(Image.fromarray(values), "PNG")


FORMATS = {
    # name in the archive: (bytes, format recorded, exact pixels expected (None: lossy))
    "jpeg/rgb.jpg": (encoded(picture(1), "JPEG", quality=95), "JPEG", None),
    "jpeg/cmyk.jpg": (encoded(picture(2).convert("CMYK"), "JPEG", quality=95), "JPEG", None),
    "jpeg/rotated.jpeg": (exif_rotated_jpeg(), "JPEG", None),
    "png/rgb.png": (encoded(picture(3), "PNG"), "PNG", picture(3)),
    "png/palette.png": (
        encoded(picture(4).convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "PNG",
        picture(4).convert("P", palette=Image.Palette.ADAPTIVE).convert("RGB"),
    ),
    "png/grey16.png": (grey16_png(), "PNG", None),
    "png/alpha.png": (alpha_png(), "PNG", None),
    "png/grey.png": (encoded(picture(5).convert("L"), "PNG"), "PNG", picture(5).convert("L")),
    "webp/lossless.webp": (encoded(picture(6), "WEBP", lossless=True), "WEBP", picture(6)),
    "webp/lossy.webp": (encoded(picture(7), "WEBP", quality=90), "WEBP", None),
    "bmp/rgb.bmp": (encoded(picture(8), "BMP"), "BMP", picture(8)),
    "gif/animated.gif": (two_frame_gif(), "GIF", None),
    "tiff/deflate.tif": (
        encoded(picture(9), "TIFF", compression="tiff_adobe_deflate"),
        "TIFF",
        picture(9),
    ),
    "tiff/plain.tiff": (encoded(picture(10), "TIFF"), "TIFF", picture(10)),
    "small/tiny.png": (
        shape(size=32),
        "PNG",
        Image.open(io.BytesIO(shape(size=32))).convert("RGB"),
    ),
}


def ingest(api, data: bytes, filename: str = "formats.zip") -> DatasetVersion:
    r = api.post("/api/v1/datasets/", {"name": "formats", "file": zip_upload(data, name=filename)})
    assert r.status_code == 202, r.content
    version = dataset_version_ingest(version_id=r.json()["id"])
    assert version.status == JobStatus.SUCCEEDED, version.message
    return version


def items_by_name(version: DatasetVersion) -> dict[str, DatasetItem]:
    return {item.original_name: item for item in DatasetItem.all_tenants.filter(version=version)}


def stored_image(item: DatasetItem, which: str = "image") -> Image.Image:
    image = Image.open(io.BytesIO(item_read(item, which)))
    image.load()
    return image


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture
def formats_version(api, outsider) -> DatasetVersion:
    return ingest(api, zip_bytes([(name, data) for name, (data, _f, _e) in FORMATS.items()]))


def test_every_format_becomes_a_canonical_rgb_png_with_a_thumbnail(formats_version):
    assert formats_version.skipped == []
    items = items_by_name(formats_version)
    assert sorted(items) == sorted(FORMATS)
    for name, (data, fmt, exact) in FORMATS.items():
        item = items[name]
        assert item.original_format == fmt, name
        assert item.original_bytes == len(data), name
        assert item.label == name.split("/")[0]
        stored = stored_image(item)
        assert (stored.format, stored.mode) == ("PNG", "RGB"), name
        assert stored.size == (item.width, item.height), name
        stored_bytes = item_read(item)
        assert stored_bytes != data, f"{name}: the uploaded bytes were stored as they came"
        assert hashlib.sha256(stored_bytes).hexdigest() == item.sha256, name
        if exact is not None:
            assert np.array_equal(pixels(stored), pixels(exact.convert("RGB"))), name
        thumbnail = stored_image(item, "thumbnail")
        assert max(thumbnail.size) <= 128, name
        if max(item.width, item.height) > 128:
            assert thumbnail.format == "WEBP" and max(thumbnail.size) == 128, name
            assert item.thumbnail_offset != item.file_offset
        else:  # small enough to be its own thumbnail
            assert item_location(item, "thumbnail") == item_location(item)
        # In a pack of the version's own, as the process that decoded it wrote it.
        folder = f"orgs/{formats_version.organization_id}/packs/{formats_version.pk}/"
        assert item.file.name.startswith(folder) and item.file.name.endswith(".pack"), name


def test_lossy_formats_keep_their_picture(formats_version):
    items = items_by_name(formats_version)
    for name, variant in (("jpeg/rgb.jpg", 1), ("jpeg/cmyk.jpg", 2), ("webp/lossy.webp", 7)):
        expected = pixels(picture(variant))
        error = np.abs(pixels(stored_image(items[name])) - expected).mean()
        assert error < 6, (name, error)


def test_exif_orientation_is_applied(formats_version):
    item = items_by_name(formats_version)["jpeg/rotated.jpeg"]
    assert (item.width, item.height) == (WIDTH, HEIGHT)  # stored sideways, shown upright
    error = np.abs(pixels(stored_image(item)) - pixels(picture())).mean()
    assert error < 6


def test_alpha_is_composited_on_white_and_16_bit_grey_is_rescaled(formats_version):
    items = items_by_name(formats_version)
    alpha = pixels(stored_image(items["png/alpha.png"]))
    assert (alpha[:, : WIDTH // 2] == 255).all()
    assert np.array_equal(alpha[:, WIDTH // 2 :], pixels(picture())[:, WIDTH // 2 :])
    grey = pixels(stored_image(items["png/grey16.png"]))
    assert grey[0, 0].tolist() == [0, 0, 0] and grey[-1, -1].tolist() == [255, 255, 255]
    assert (grey[..., 0] == grey[..., 1]).all()


def test_a_gif_keeps_its_first_frame(formats_version):
    gif = pixels(stored_image(items_by_name(formats_version)["gif/animated.gif"]))
    assert (np.abs(gif - np.array([255, 0, 0])) <= 2).all()


def test_the_health_report_counts_the_uploaded_formats(formats_version):
    assert formats_version.health["formats"] == {
        "PNG": 6,
        "JPEG": 3,
        "WEBP": 2,
        "TIFF": 2,
        "BMP": 1,
        "GIF": 1,
    }


def test_bytes_that_disagree_with_their_extension(api, outsider):
    data = zip_bytes(
        [
            ("cat/really_a_png.jpg", shape("circle", 1)),
            ("cat/really_a_jpeg.png", shape("circle", 2, fmt="JPEG")),
            ("dog/text.png", b"name,price\nwidget,3\n"),
            ("dog/ok.png", shape("square", 3)),
        ]
    )
    version = ingest(api, data)
    items = items_by_name(version)
    assert items["cat/really_a_png.jpg"].original_format == "PNG"
    assert items["cat/really_a_jpeg.png"].original_format == "JPEG"
    assert [s["path"] for s in version.skipped] == ["dog/text.png"]
    assert "not a readable image" in version.skipped[0]["reason"]


# --- names in any script ------------------------------------------------------------------------

NAMES = {
    "猫/照片 一.png": "猫",
    "猫/二.jpg": "猫",
    "قطة/صورة.png": "قطة",
    "قطة/٢.png": "قطة",
    "Crème brûlée/Ça va.png": "Crème brûlée",
    "Crème brûlée/Åsa Öberg.png": "Crème brûlée",
}


@pytest.mark.parametrize(
    ("kind", "build"),
    [
        ("zip with the UTF-8 flag", lambda entries: zip_bytes(entries)),
        ("zip without the UTF-8 flag", lambda entries: clear_utf8_flag(zip_bytes(entries))),
        ("tar.gz", lambda entries: tar_bytes(entries, gz=True)),
        ("gnu tar", lambda entries: tar_bytes(entries, fmt=tarfile.GNU_FORMAT)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_class_and_file_names_in_any_script_stay_intact(api, outsider, kind, build):
    entries = [
        (name, shape(("circle", "square", "triangle")[i % 3], 10 + i, fmt="PNG"))
        for i, name in enumerate(NAMES)
    ]
    version = ingest(api, build(entries), filename="names.tgz" if "tar" in kind else "names.zip")
    assert {name: item.label for name, item in items_by_name(version).items()} == NAMES
    r = api.get(f"/api/v1/dataset-versions/{version.pk}/")
    assert sorted(r.json()["labels"]) == sorted(set(NAMES.values()))


# --- a small real data set that ships inside a package ----------------------------------------


def test_a_real_data_set_from_scikit_image_round_trips(api, outsider):
    """scikit-image bundles its sample images in the package (nothing is downloaded): real
    photos, and 200 real 25x25 grey crops, 100 of faces and 100 of other things (lfw_subset)."""
    from skimage import data as samples

    crops = samples.lfw_subset()
    assert crops.shape == (200, 25, 25)
    entries = []
    for i, crop in enumerate(crops):
        label = "face" if i < 100 else "not_face"
        grey = Image.fromarray(np.round(crop * 255).astype(np.uint8))
        entries.append((f"lfw/{label}/{i:03d}.png", encoded(grey, "PNG")))
    photos = {
        "astronaut": samples.astronaut(),
        "coffee": samples.coffee(),
        "chelsea": samples.chelsea(),
        "rocket": samples.rocket(),
    }
    for name, array in photos.items():
        entries.append((f"photos/{name}.png", encoded(Image.fromarray(array), "PNG")))
        entries.append((f"photos/{name}.jpg", encoded(Image.fromarray(array), "JPEG", quality=90)))

    version = ingest(api, tar_bytes(entries, gz=True), filename="skimage.tar.gz")

    counts = {label: c["total"] for label, c in version.class_counts.items()}
    duplicates = sum(len(d["paths"]) - 1 for d in version.health["duplicates"])
    assert counts["face"] + counts["not_face"] + duplicates == 200
    assert counts["photos"] == 2 * len(photos)
    assert version.item_count == 200 - duplicates + 2 * len(photos)
    assert len(version.skipped) == duplicates
    items = items_by_name(version)
    for name, array in photos.items():
        png = items[f"photos/{name}.png"]
        assert (png.width, png.height) == (array.shape[1], array.shape[0])
        assert np.array_equal(np.asarray(stored_image(png)), array)
        jpeg = stored_image(items[f"photos/{name}.jpg"])
        assert np.abs(pixels(jpeg) - array.astype(np.int16)).mean() < 4
        assert max(stored_image(png, "thumbnail").size) == 128
    face = items["lfw/face/000.png"]
    stored = np.asarray(stored_image(face))
    assert np.array_equal(stored[..., 0], np.round(crops[0] * 255).astype(np.uint8))
    assert version.health["classes"]["face"]["test"] >= 1


def test_a_thumbnail_in_a_pack_is_served_as_the_webp_it_is(api, formats_version):
    item = items_by_name(formats_version)["jpeg/rgb.jpg"]  # larger than a thumbnail
    response = api.get(f"/api/v1/dataset-items/{item.pk}/thumbnail/")
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert b"".join(response.streaming_content) == item_read(item, "thumbnail")
    response = api.get(f"/api/v1/dataset-items/{item.pk}/image/")
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == item_read(item)
