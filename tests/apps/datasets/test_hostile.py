"""The hostile catalogue: generated archives that attack the upload path, run against the API.

Each row builds an archive around a unique payload name, uploads it (POST /api/v1/datasets/),
ingests it with the real service, and expects a clear 4xx, a failed ingestion with a message,
a skipped entry with a reason, or a safely stored image. Whatever the row, the portal never
answers 500, writes nothing outside the organization's folder of MEDIA_ROOT (and no file named
like the payload anywhere), and leaves the data stored before it exactly as it was.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from apps.core.jobs import JobStatus
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion
from apps.datasets.services import dataset_version_ingest
from apps.datasets.stored import item_read
from tests.apps.datasets.test_upload import mark_encrypted
from tests.conftest import zip_upload
from tests.support.archives import (
    TarEntry,
    class_images,
    noise_png,
    pixel_bomb,
    shape,
    symlink_info,
    tar_bytes,
    zip_bytes,
)

DATASETS = "/api/v1/datasets/"
GOOD = class_images(2, seed=42)
GOOD_ROWS = "".join(f"{name},{name.split('/')[0]}\n" for name, _data in GOOD)
PNG = shape("circle", 99)
SCRIPT = b"\n<script>alert('owned')</script>\n#!/bin/sh\nrm -rf / --no-preserve-root\n"
MB = 1024 * 1024


def z(*extra) -> bytes:
    return zip_bytes(GOOD + list(extra))


def t(*extra, gz: bool = False) -> bytes:
    return tar_bytes(GOOD + list(extra), gz=gz)


def zeros(n: int = 12) -> list[tuple[str, bytes]]:
    return [(f"circle/bomb{i}.png", b"\0" * MB) for i in range(n)]


def noise(n: int = 6) -> list[tuple[str, bytes]]:
    """About 120 KB each once unpacked, and barely compressible."""
    return [(f"square/noise{i}.png", noise_png(200, i)) for i in range(n)]


@dataclass(frozen=True)
class Case:
    """One hostile upload. `build` and `path` take the payload name (unique per run)."""

    build: Callable[[str], bytes]
    expect: str  # refused | failed | skipped | stored
    phrase: str = ""  # in the error, the failure message or the skip reason
    status: int = 202  # the answer to the upload when refused
    path: Callable[[str], str] | None = None  # the skipped entry
    filename: str = "upload.zip"
    settings: dict = field(default_factory=dict)
    check: Callable[[DatasetVersion, str], None] | None = None


def stored_as(format_name: str, name: Callable[[str], str]) -> Callable:
    def check(version: DatasetVersion, payload: str) -> None:
        item = DatasetItem.all_tenants.get(version=version, original_name=name(payload))
        assert item.original_format == format_name

    return check


def re_encoded(name: Callable[[str], str], uploaded: bytes) -> Callable:
    """The stored image is a fresh PNG of the pixels: none of the uploaded bytes ride along."""

    def check(version: DatasetVersion, payload: str) -> None:
        item = DatasetItem.all_tenants.get(version=version, original_name=name(payload))
        stored = item_read(item)
        assert stored != uploaded
        assert SCRIPT not in stored and b"<script>" not in stored and b"PK\x03\x04" not in stored
        assert stored.startswith(b"\x89PNG\r\n\x1a\n") and stored.endswith(b"IEND\xaeB`\x82")

    return check


POLYGLOT = PNG + SCRIPT
PNG_ZIP = PNG + zip_bytes([("payload.sh", SCRIPT)])

CASES: dict[str, Case] = {
    # --- path traversal, both formats ------------------------------------------------------
    "zip ../": Case(
        lambda p: z((f"../{p}.png", PNG)), "skipped", "unsafe path", path=lambda p: f"../{p}.png"
    ),
    "zip deep ../": Case(
        lambda p: z((f"circle/../../../../{p}.png", PNG)),
        "skipped",
        "unsafe path",
        path=lambda p: f"circle/../../../../{p}.png",
    ),
    "zip absolute": Case(
        lambda p: z((f"/tmp/{p}.png", PNG)),
        "skipped",
        "unsafe path",
        path=lambda p: f"/tmp/{p}.png",
    ),
    "zip drive letter": Case(
        lambda p: z((f"C:/{p}.png", PNG)), "skipped", "unsafe path", path=lambda p: f"C:/{p}.png"
    ),
    "zip backslash": Case(
        lambda p: z((f"..\\{p}.png", PNG)), "skipped", "unsafe path", path=lambda p: f"..\\{p}.png"
    ),
    "zip control character": Case(
        lambda p: z((f"circle/{p}\r.png", PNG)),
        "skipped",
        "unsafe path",
        path=lambda p: f"circle/{p}\r.png",
    ),
    "zip symlink": Case(
        lambda p: z((symlink_info(f"circle/{p}.png"), b"../../../../etc/passwd")),
        "skipped",
        "symbolic link",
        path=lambda p: f"circle/{p}.png",
    ),
    "tar ../": Case(
        lambda p: t((f"../{p}.png", PNG)),
        "skipped",
        "unsafe path",
        path=lambda p: f"../{p}.png",
        filename="u.tar",
    ),
    "tar.gz absolute": Case(
        lambda p: t((f"/tmp/{p}.png", PNG), gz=True),
        "skipped",
        "unsafe path",
        path=lambda p: f"/tmp/{p}.png",
        filename="u.tgz",
    ),
    "tar drive and backslash": Case(
        lambda p: t((f"C:\\{p}.png", PNG)),
        "skipped",
        "unsafe path",
        path=lambda p: f"C:\\{p}.png",
        filename="u.tar",
    ),
    "tar symlink to a secret": Case(
        lambda p: t(TarEntry(f"circle/{p}.png", type=tarfile.SYMTYPE, linkname="/etc/passwd")),
        "skipped",
        "symbolic link",
        path=lambda p: f"circle/{p}.png",
        filename="u.tar",
    ),
    "tar symlink then write through it": Case(
        lambda p: t(
            TarEntry(p, type=tarfile.SYMTYPE, linkname="../../../../.."),
            (f"{p}/{p}.png", PNG),
        ),
        "skipped",
        "symbolic link",
        path=lambda p: p,
        filename="u.tar",
    ),
    "tar hard link": Case(
        lambda p: t(TarEntry(f"circle/{p}.png", type=tarfile.LNKTYPE, linkname="/etc/shadow")),
        "skipped",
        "hard link",
        path=lambda p: f"circle/{p}.png",
        filename="u.tar",
    ),
    "tar device": Case(
        lambda p: t(TarEntry(f"circle/{p}.png", type=tarfile.CHRTYPE)),
        "skipped",
        "device file",
        path=lambda p: f"circle/{p}.png",
        filename="u.tar",
    ),
    "tar fifo": Case(
        lambda p: t(TarEntry(f"circle/{p}.png", type=tarfile.FIFOTYPE), gz=True),
        "skipped",
        "named pipe",
        path=lambda p: f"circle/{p}.png",
        filename="u.tgz",
    ),
    "manifest row ../": Case(
        lambda p: z(
            (
                "manifest.csv",
                (f"file,label\n../../{p}.png,cat\n" + GOOD_ROWS).encode(),
            )
        ),
        "skipped",
        "not a usable path",
        path=lambda p: "manifest.csv row 2",
    ),
    # --- bombs, counted on bytes actually read ---------------------------------------------
    "zip ratio bomb": Case(lambda p: z(*zeros()), "failed", "times its own size"),
    "zip total bomb": Case(
        lambda p: z(*noise()),
        "failed",
        "unpacks to more than 512 KB",
        settings={"LEPTON_MAX_ARCHIVE_BYTES": 512 * 1024},
    ),
    "zip entry bomb": Case(
        lambda p: z((f"square/{p}.png", noise_png(200))),
        "skipped",
        "larger than 64 KB once unpacked",
        path=lambda p: f"square/{p}.png",
        settings={"LEPTON_MAX_IMAGE_BYTES": 64 * 1024},
    ),
    "tar.gz ratio bomb": Case(
        lambda p: t(*zeros(), gz=True), "refused", "times its own size", 413, filename="b.tgz"
    ),
    "tar total bomb": Case(
        lambda p: t(*noise()),
        "refused",
        "unpacks to more than 512 KB",
        413,
        filename="b.tar",
        settings={"LEPTON_MAX_ARCHIVE_BYTES": 512 * 1024},
    ),
    "tar.gz header bomb": Case(
        lambda p: t(TarEntry("circle/x.png", PNG, pax={"comment": "A" * (3 * MB)}), gz=True),
        "refused",
        "tar header larger than",
        413,
        filename="h.tgz",
        settings={"LEPTON_MAX_COMPRESSION_RATIO": 10_000},
    ),
    "zip pixel bomb": Case(
        lambda p: z((f"circle/{p}.png", pixel_bomb(30_000, 30_000))),
        "skipped",
        "image is too large: 900000000 pixels",
        path=lambda p: f"circle/{p}.png",
    ),
    "tar.gz pixel bomb": Case(
        lambda p: t((f"circle/{p}.gif", pixel_bomb(50_000, 40_000)), gz=True),
        "skipped",
        "image is too large",
        path=lambda p: f"circle/{p}.gif",
        filename="p.tgz",
    ),
    "too many entries (zip)": Case(
        lambda p: z(), "refused", "the limit is 5", 413, settings={"LEPTON_MAX_ARCHIVE_ENTRIES": 5}
    ),
    "too many entries (tar.gz)": Case(
        lambda p: t(gz=True),
        "refused",
        "the limit is 5",
        413,
        filename="m.tgz",
        settings={"LEPTON_MAX_ARCHIVE_ENTRIES": 5},
    ),
    # --- bytes that lie ------------------------------------------------------------------
    "png named .jpg": Case(
        lambda p: z((f"circle/{p}.jpg", PNG)),
        "stored",
        check=stored_as("PNG", lambda p: f"circle/{p}.jpg"),
    ),
    "text named .png": Case(
        lambda p: z((f"circle/{p}.png", b"#!/bin/sh\necho owned\n")),
        "skipped",
        "not a readable image",
        path=lambda p: f"circle/{p}.png",
    ),
    "zip named .png": Case(
        lambda p: z((f"circle/{p}.png", zip_bytes(GOOD))),
        "skipped",
        "not a readable image",
        path=lambda p: f"circle/{p}.png",
    ),
    "png with a trailing script": Case(
        lambda p: z((f"circle/{p}.png", POLYGLOT)),
        "stored",
        check=re_encoded(lambda p: f"circle/{p}.png", POLYGLOT),
    ),
    "png that is also a zip": Case(
        lambda p: z((f"square/{p}.png", PNG_ZIP)),
        "stored",
        check=re_encoded(lambda p: f"square/{p}.png", PNG_ZIP),
    ),
    "encrypted entry": Case(
        lambda p: mark_encrypted(z((f"circle/{p}.png", PNG)), f"circle/{p}.png"),
        "skipped",
        "encrypted",
        path=lambda p: f"circle/{p}.png",
    ),
    "one path twice": Case(
        lambda p: t((f"circle/{p}.png", PNG), (f"circle/{p}.png", shape("circle", 98))),
        "skipped",
        "holds this path twice",
        path=lambda p: f"circle/{p}.png",
        filename="d.tar",
    ),
    # --- no usable archive --------------------------------------------------------------
    "empty zip": Case(lambda p: zip_bytes([]), "refused", "empty archive", 400),
    "empty tar": Case(lambda p: tar_bytes([]), "refused", "empty archive", 400, filename="e.tar"),
    "cut tar.gz": Case(
        lambda p: t(*noise(2), gz=True)[:-3000],
        "refused",
        "damaged or incomplete",
        400,
        filename="c.tgz",
    ),
    "executable named .zip": Case(
        lambda p: b"\x7fELF\x02\x01\x01" + b"\0" * 600 + SCRIPT, "refused", "not a zip archive", 400
    ),
    "only junk and escapes": Case(
        lambda p: zip_bytes(
            [(f"../{p}.png", PNG), ("__MACOSX/._a.png", b"x"), (".DS_Store", b"x")]
        ),
        "refused",
        "no images in class folders",
        400,
    ),
}


def media_files() -> dict[Path, str]:
    root = Path(django_settings.MEDIA_ROOT)
    return {
        p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def rows(version: DatasetVersion) -> set[tuple]:
    return set(
        DatasetItem.all_tenants.filter(version=version).values_list(
            "pk", "file", "thumbnail", "label", "split", "sha256", "original_name"
        )
    )


def payload_files(payload: str) -> list[str]:
    """Files or folders named like the payload: under the test's data folder, in each folder
    above MEDIA_ROOT (where a '..' would land), and in the working directory."""
    found = [str(p) for p in Path(django_settings.DATA_DIR).rglob(f"*{payload}*")]
    for folder in [*Path(django_settings.MEDIA_ROOT).parents, Path.cwd()]:
        with os.scandir(folder) as entries:
            found += [entry.path for entry in entries if payload in entry.name]
    return found


@pytest.fixture
def earlier(api) -> DatasetVersion:
    """Data stored before the attack: a good dataset, ingested."""
    r = api.post(
        DATASETS, {"name": "earlier", "file": zip_upload(zip_bytes(class_images(2, seed=7)))}
    )
    assert r.status_code == 202, r.content
    return dataset_version_ingest(version_id=r.json()["id"])


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 25
    assert {c.expect for c in CASES.values()} == {"refused", "failed", "skipped", "stored"}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_hostile_upload_is_handled(api, tenant, outsider, settings, earlier, case):
    for name, value in case.settings.items():
        setattr(settings, name, value)
    payload = f"evil-{uuid.uuid4().hex[:12]}"
    earlier_rows, before = rows(earlier), media_files()
    datasets = Dataset.all_tenants.count()

    response = api.post(
        DATASETS, {"name": "hostile", "file": zip_upload(case.build(payload), name=case.filename)}
    )

    assert response.status_code < 500, response.content
    if case.expect == "refused":
        assert response.status_code == case.status, response.content
        assert case.phrase in response.json()["error"]["message"]
        assert f"'{case.filename}'" in response.json()["error"]["message"]
        assert Dataset.all_tenants.count() == datasets
    else:
        assert response.status_code == 202, response.content
        version = dataset_version_ingest(version_id=response.json()["id"])
        assert "internal error" not in version.message
        if case.expect == "failed":
            assert version.status == JobStatus.FAILED
            assert case.phrase in version.message
            assert not DatasetItem.all_tenants.filter(version=version).exists()
        else:
            assert version.status == JobStatus.SUCCEEDED, version.message
            assert version.item_count >= len(GOOD)
            reasons = {s["path"]: s["reason"] for s in version.skipped}
            if case.expect == "skipped":
                assert case.phrase in reasons[case.path(payload)], reasons
            else:
                case.check(version, payload)

    # Nothing outside this organization's folder; nothing named like the payload anywhere.
    after = media_files()
    org_folder = Path("orgs") / str(tenant.organization.pk)
    assert all(org_folder in path.parents for path in set(after) - set(before)), set(after) - set(
        before
    )
    assert payload_files(payload) == []
    # What was stored before is exactly as it was.
    assert rows(earlier) == earlier_rows
    assert {path: after.get(path) for path in before} == before
