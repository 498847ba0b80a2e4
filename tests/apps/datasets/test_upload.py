"""Uploading datasets: hostile and invalid archives are refused or their bad entries skipped.

An upload refused at the door leaves nothing behind (no row, no file). An archive that is
accepted is unpacked by the real ingestion service; each bad entry is skipped with a reason and
nothing is ever written outside the organization's folder in MEDIA_ROOT.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tempfile
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.test.client import MULTIPART_CONTENT
from PIL import Image

from apps.core.jobs import JobStatus
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion
from apps.datasets.services import dataset_version_ingest
from apps.quotas.services import quota_override_set
from tests.conftest import png_bytes, zip_upload
from tests.support.shapes import SHAPE_CLASSES, image_bytes, make_class_zip

DATASETS = "/api/v1/datasets/"
PER_CLASS = 4


def media_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def build_zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], base: bytes = b"") -> bytes:
    """A zip of `base` (another zip's entries) followed by `entries`, names kept verbatim."""
    buffer = io.BytesIO(base)
    with zipfile.ZipFile(buffer, "a" if base else "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def pixel_bomb(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header declares width x height pixels."""
    data = bytearray(png_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def noise_png(side: int) -> bytes:
    """A PNG of random pixels: it barely compresses, so its size is about 3 * side**2 bytes."""
    pixels = np.random.default_rng(side).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    return image_bytes(Image.fromarray(pixels, mode="RGB"))


def mark_encrypted(data: bytes, name: str) -> bytes:
    """Set the 'encrypted' flag of `name` in the central directory (no password will do)."""
    raw = bytearray(data)
    at = raw.find(b"PK\x01\x02")  # the first central directory header
    while at != -1:
        name_length = struct.unpack("<H", raw[at + 28 : at + 30])[0]
        if raw[at + 46 : at + 46 + name_length].decode() == name:
            raw[at + 8] |= 0x01
            return bytes(raw)
        at = raw.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name} not in the archive")


def upload(api, data: bytes, *, name: str = "dataset", filename: str = "shapes.zip"):
    return api.post(DATASETS, {"name": name, "file": zip_upload(data, name=filename)})


def ingest(api, data: bytes, **kwargs) -> DatasetVersion:
    r = upload(api, data, **kwargs)
    assert r.status_code == 202, r.content
    version = dataset_version_ingest(version_id=r.json()["id"])
    assert version is not None
    return version


def skipped_reasons(version: DatasetVersion) -> dict[str, str]:
    return {item["path"]: item["reason"] for item in version.skipped}


# --- refused at the door --------------------------------------------------------------------

_good = make_class_zip(per_class=2)
_REFUSED = {
    "text renamed .zip": (b"cat,dog\n1,2\n", "table.zip", ["'table.zip'", "not a zip archive"]),
    "png renamed .zip": (png_bytes(), "photo.zip", ["'photo.zip'", "not a zip archive"]),
    "empty file": (b"", "empty.zip", ["'empty.zip'", "empty"]),
    "only text files": (
        build_zip([("docs/readme.txt", b"hello"), ("notes.txt", b"x")]),
        "docs.zip",
        ["'docs.zip'", "no images in class folders"],
    ),
    "images only at the root": (
        build_zip([("a.png", png_bytes()), ("b.png", png_bytes(seed=2))]),
        "flat.zip",
        ["'flat.zip'", "no images in class folders", "folder named after the class"],
    ),
    "truncated zip": (
        _good[: len(_good) // 2],
        "cut.zip",
        ["'cut.zip'", "not a zip archive", "damaged or incomplete"],
    ),
    "only unsafe and junk entries": (
        build_zip([("../up.png", png_bytes()), ("__MACOSX/c/._a.png", b"x")]),
        "junk.zip",
        ["'junk.zip'", "no images in class folders"],
    ),
}


@pytest.mark.parametrize(("data", "filename", "phrases"), _REFUSED.values(), ids=_REFUSED.keys())
def test_it_refuses_a_bad_upload_and_stores_nothing(api, outsider, data, filename, phrases):
    before = media_files()
    r = upload(api, data, filename=filename)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "invalid"
    assert "file" in error["fields"]
    for phrase in phrases:
        assert phrase in error["message"]
    assert not Dataset.all_tenants.exists()
    assert media_files() == before


def test_it_refuses_an_upload_without_a_file(api, tenant, outsider):
    before = media_files()
    r = api.post(DATASETS, {"name": "no file"}, content_type=MULTIPART_CONTENT)
    assert r.status_code == 400
    error = r.json()["error"]
    assert "'file'" in error["message"]
    assert "file" in error["fields"]
    assert not Dataset.all_tenants.exists()
    assert media_files() == before


@pytest.mark.parametrize("name", [None, "", "   ", "x" * 121])
def test_it_refuses_an_upload_without_a_good_name(api, outsider, name):
    before = media_files()
    body = {"file": zip_upload(_good)} | ({} if name is None else {"name": name})
    r = api.post(DATASETS, body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert "name" in error["fields"]
    assert ("120" in error["message"]) == (name is not None and len(name) > 120)
    assert not Dataset.all_tenants.exists()
    assert media_files() == before


def test_it_refuses_json_instead_of_a_file(api, outsider):
    before = media_files()
    r = api.post(DATASETS, {"name": "json"})
    assert r.status_code == 400
    assert "Attach a zip or tar archive" in r.json()["error"]["message"]
    assert media_files() == before


def test_it_refuses_an_upload_over_the_size_limit(api, outsider, settings):
    settings.LEPTON_MAX_UPLOAD_BYTES = 1024 * 1024
    data = build_zip([("noise/big.png", noise_png(620))])
    assert len(data) > settings.LEPTON_MAX_UPLOAD_BYTES
    before = media_files()

    r = upload(api, data, filename="huge.zip")
    assert r.status_code == 413
    error = r.json()["error"]
    assert error["code"] == "too_large"
    assert "'huge.zip'" in error["message"]
    assert "limited to 1 MB" in error["message"]
    assert not Dataset.all_tenants.exists()
    assert media_files() == before


def test_it_refuses_an_archive_with_too_many_entries(api, outsider, settings):
    settings.LEPTON_MAX_ARCHIVE_ENTRIES = 5
    data = make_class_zip(per_class=2)
    entries = len(zipfile.ZipFile(io.BytesIO(data)).infolist())
    before = media_files()

    r = upload(api, data, filename="many.zip")
    assert r.status_code == 413
    message = r.json()["error"]["message"]
    assert f"'many.zip' has {entries} entries" in message
    assert "the limit is 5" in message
    assert not Dataset.all_tenants.exists()
    assert media_files() == before


def test_it_refuses_an_upload_over_the_storage_quota(api, client, tenant, outsider):
    quota_override_set(organization=tenant.organization, storage_bytes=1000)
    before = media_files()

    r = upload(api, _good)
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert "quota" in error["message"]
    assert not Dataset.all_tenants.exists()
    assert media_files() == before
    # The outsider's quota is its own.
    r = client.post(DATASETS, {"name": "ok", "file": zip_upload(_good)}, **outsider.auth)
    assert r.status_code == 202


# --- accepted, bad entries skipped ----------------------------------------------------------


# Pillow warns about the 10000x10000 header before decode_image refuses it; that is expected.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_it_skips_hostile_and_useless_entries_with_reasons(api, tenant, outsider):
    evil = f"evil-{uuid.uuid4().hex}.png"
    good = make_class_zip(per_class=PER_CLASS)
    first = f"{SHAPE_CLASSES[0]}/{SHAPE_CLASSES[0]}_0.png"
    duplicate = zipfile.ZipFile(io.BytesIO(good)).read(first)
    real_png = png_bytes(seed=99)
    bombs = {"circle/bomb.png": (30_000, 30_000), "square/wide.png": (10_000, 10_000)}
    hostile = [
        (f"../{evil}", real_png),
        (f"../../../../{evil}", real_png),
        (f"/tmp/{evil}", real_png),
        (f"..\\{evil}", real_png),
        (f"C:/{evil}", real_png),
        (symlink_entry("circle/link.png"), b"../../../../../etc/passwd"),
        ("__MACOSX/circle/._circle_0.png", b"\x00\x05\x16\x07"),
        ("circle/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        ("Thumbs.db", b"\x00"),
        ("square/.hidden.png", real_png),
        (".git/config.png", real_png),
        ("triangle/notes.txt", b"drawn by hand"),
        ("triangle/fake.png", b"this is not a png at all"),
        ("triangle/cut.png", real_png[: len(real_png) // 2]),
        ("square/dup.png", duplicate),
        *[(name, pixel_bomb(w, h)) for name, (w, h) in bombs.items()],
    ]
    before = media_files()

    version = ingest(api, build_zip(hostile, base=good))

    assert version.status == JobStatus.SUCCEEDED, version.error
    reasons = skipped_reasons(version)
    names = [getattr(info, "filename", info) for info, _ in hostile]
    assert sorted(reasons) == sorted(names)
    for name in (f"../{evil}", f"../../../../{evil}", f"/tmp/{evil}", f"..\\{evil}", f"C:/{evil}"):
        assert "unsafe path" in reasons[name]
    assert "symbolic link" in reasons["circle/link.png"]
    assert "__MACOSX" in reasons["__MACOSX/circle/._circle_0.png"]
    for name in ("circle/.DS_Store", "Thumbs.db", "square/.hidden.png", ".git/config.png"):
        assert "hidden or system file" in reasons[name]
    assert "not an image file" in reasons["triangle/notes.txt"]
    assert "'.txt'" in reasons["triangle/notes.txt"]
    assert "not a readable image" in reasons["triangle/fake.png"]
    assert "damaged or truncated" in reasons["triangle/cut.png"]
    assert reasons["square/dup.png"] == f"exact duplicate of {first}"
    for name, (w, h) in bombs.items():
        assert f"image is too large: {w * h} pixels" in reasons[name]

    # The good images all arrived, in their classes.
    assert version.item_count == PER_CLASS * len(SHAPE_CLASSES)
    assert {label: c["total"] for label, c in version.class_counts.items()} == {
        label: PER_CLASS for label in SHAPE_CLASSES
    }
    assert DatasetItem.all_tenants.filter(version=version).count() == version.item_count

    # Everything new lives in this organization's folder; nothing escaped anywhere.
    new = media_files() - before
    assert new, "the archive and items should be stored"
    org_folder = Path("orgs") / str(tenant.organization.pk)
    assert all(org_folder in path.parents for path in new), new
    # The source archive, and the packs the images were written to, in the version's folder.
    packs = {path for path in new if path.suffix == ".pack"}
    assert new - packs == {Path(version.source.name)}
    assert {path.parent for path in packs} == {org_folder / "packs" / str(version.pk)}
    assert sum(default_storage.size(str(path)) for path in packs) == version.stored_bytes
    for root in {Path(settings.MEDIA_ROOT).parent.parent, Path(tempfile.gettempdir()), Path.cwd()}:
        for _folder, _dirs, files in os.walk(root):
            assert evil not in files, f"{evil} was written under {root}"


def test_it_skips_damaged_and_encrypted_entries(api, outsider):
    stored = io.BytesIO()
    with zipfile.ZipFile(stored, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("circle/crc.png", png_bytes(seed=11))
        archive.writestr("square/locked.png", png_bytes(seed=12))
    data = bytearray(stored.getvalue())
    data[data.find(b"IDAT") + 8] ^= 0xFF  # flip a pixel byte: the entry's CRC no longer fits
    damaged = mark_encrypted(bytes(data), "square/locked.png")
    good = [(f"{c}/{i}.png", png_bytes(c, seed=i)) for c in SHAPE_CLASSES for i in range(3)]

    version = ingest(api, build_zip(good, base=damaged))

    assert version.status == JobStatus.SUCCEEDED, version.error
    reasons = skipped_reasons(version)
    assert sorted(reasons) == ["circle/crc.png", "square/locked.png"]
    assert "damaged entry" in reasons["circle/crc.png"]
    assert "Bad CRC-32" in reasons["circle/crc.png"]
    assert "encrypted" in reasons["square/locked.png"]
    assert version.item_count == len(good)


def test_an_archive_of_only_unreadable_images_fails_with_a_message(api, tenant, outsider):
    data = build_zip(
        [
            ("cats/a.png", b"not an image"),
            ("dogs/b.jpg", png_bytes()[:40]),
            ("dogs/c.gif", pixel_bomb(20_000, 20_000)),
        ]
    )
    version = ingest(api, data, filename="broken.zip")

    assert version.status == JobStatus.FAILED
    assert "No readable image" in version.message
    assert version.error == version.message
    assert version.finished_at is not None
    assert version.lease_expires_at is None
    assert sorted(skipped_reasons(version)) == ["cats/a.png", "dogs/b.jpg", "dogs/c.gif"]
    assert all(reason for reason in skipped_reasons(version).values())
    assert not DatasetItem.all_tenants.filter(version=version).exists()
    items = Path(settings.MEDIA_ROOT, f"orgs/{tenant.organization.pk}/datasets")
    assert not [p for p in items.rglob("*.png")]

    r = api.get(f"/api/v1/dataset-versions/{version.pk}/")
    assert r.status_code == 200
    assert r.json()["status"] == "failed"
    assert r.json()["ready"] is False
    assert len(r.json()["skipped"]) == 3


def test_it_skips_an_image_over_the_per_image_limit(api, outsider, settings):
    settings.LEPTON_MAX_IMAGE_BYTES = 1024 * 1024
    big = noise_png(620)
    assert len(big) > settings.LEPTON_MAX_IMAGE_BYTES
    version = ingest(api, build_zip([("circle/huge.png", big)], base=make_class_zip(per_class=3)))

    assert version.status == JobStatus.SUCCEEDED
    assert skipped_reasons(version) == {"circle/huge.png": "larger than 1 MB once unpacked"}
    assert version.class_counts["circle"]["total"] == 3


def test_it_keeps_labels_in_any_script(api, outsider):
    labels = ["猫", "قطة", "café", "Ελληνικά"]
    entries = [
        (f"{label}/{i}.png", png_bytes(SHAPE_CLASSES[k % 3], seed=10 * k + i))
        for k, label in enumerate(labels)
        for i in range(3)
    ]
    version = ingest(api, build_zip(entries))

    assert version.status == JobStatus.SUCCEEDED, version.error
    assert version.labels == sorted(labels)
    stored = DatasetItem.all_tenants.filter(version=version).values_list("label", flat=True)
    assert sorted(set(stored)) == sorted(labels)
    r = api.get(f"/api/v1/dataset-versions/{version.pk}/")
    assert r.json()["labels"] == sorted(labels)
    assert set(r.json()["class_counts"]) == set(labels)


def deflated(entries: list[tuple[str, bytes]], base: bytes = b"") -> bytes:
    buffer = io.BytesIO(base)
    with zipfile.ZipFile(buffer, "a" if base else "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_it_skips_a_zip_bomb_entry_by_the_bytes_it_unpacks(api, outsider, settings):
    settings.LEPTON_MAX_IMAGE_BYTES = 1024 * 1024
    bomb = b"\x00" * (8 * settings.LEPTON_MAX_IMAGE_BYTES)
    data = deflated([("circle/bomb.png", bomb)], base=make_class_zip(per_class=3))
    assert len(data) < settings.LEPTON_MAX_IMAGE_BYTES // 10  # tiny on the wire

    version = ingest(api, data)

    assert version.status == JobStatus.SUCCEEDED
    assert skipped_reasons(version) == {"circle/bomb.png": "larger than 1 MB once unpacked"}
    assert version.item_count == 3 * len(SHAPE_CLASSES)


def test_it_fails_an_archive_that_unpacks_to_more_than_the_archive_limit(api, tenant, settings):
    settings.LEPTON_MAX_ARCHIVE_BYTES = 1024 * 1024
    half = b"\x00" * (settings.LEPTON_MAX_ARCHIVE_BYTES * 3 // 4)
    data = deflated([("circle/a.png", half), ("circle/b.png", half + b"\x01")])

    version = ingest(api, data)

    assert version.status == JobStatus.FAILED
    assert "unpacks to more than 1 MB" in version.message
    assert not DatasetItem.all_tenants.filter(version=version).exists()


def test_it_reads_entries_named_with_a_leading_dot_slash(tenant):
    import io
    import zipfile

    from apps.datasets.services import dataset_create, dataset_version_ingest
    from tests.conftest import png_bytes, zip_upload

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("./circle/a.png", png_bytes("circle", 1))
        archive.writestr("./square/b.png", png_bytes("square", 2))
    version = dataset_create(
        organization=tenant.organization,
        user=tenant.user,
        name="dots",
        upload=zip_upload(buffer.getvalue()),
    )
    version = dataset_version_ingest(version_id=version.pk)
    assert version.skipped == []
    assert sorted(version.class_counts) == ["circle", "square"]
