"""A 1 GB upload streams to disk: the web processes' peak memory stays flat."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
import requests

from tests.support.shapes import make_class_zip

pytestmark = pytest.mark.e2e

GIB = 1024**3
PASSWORD = "Corr3ct-horse-battery"


def peak_rss_kib(pid: int) -> int:
    """The highest resident set size the process ever had (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def web_worker_pids(stack) -> list[int]:
    master = stack.processes[1].pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def write_big_archive(path: Path, size: int) -> None:
    """A zip of real class folders plus one stored (incompressible) entry filling it up."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        with zipfile.ZipFile(__import__("io").BytesIO(make_class_zip(per_class=4))) as small:
            for name in small.namelist():
                archive.writestr(name, small.read(name))
        with archive.open("padding/filler.bin", "w", force_zip64=True) as filler:
            chunk = os.urandom(8 * 1024 * 1024)
            for _ in range(size // len(chunk)):
                filler.write(chunk)


def test_it_streams_a_1_gb_upload_without_growing_the_web_process(embedded_stack, tmp_path):
    base = embedded_stack.base_url
    requests.post(
        f"{base}/api/v1/auth/signup/",
        json={"email": "big@upload.example", "password": PASSWORD, "organization_name": "Big"},
        timeout=30,
    ).raise_for_status()
    key = requests.post(
        f"{base}/api/v1/api-keys/",
        json={"name": "big"},
        auth=("big@upload.example", PASSWORD),
        timeout=30,
    ).json()["key"]
    archive = tmp_path / "big.zip"
    write_big_archive(archive, GIB)
    assert archive.stat().st_size > GIB

    # Warm the workers up (imports, first request) so the baseline is their working size.
    for _ in range(4):
        requests.get(
            f"{base}/api/v1/datasets/", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
    before = {pid: peak_rss_kib(pid) for pid in web_worker_pids(embedded_stack)}
    assert len(before) == 2 and min(before.values()) > 40 * 1024, before  # Django loaded

    with archive.open("rb") as handle:
        response = requests.post(
            f"{base}/api/v1/datasets/",
            headers={"Authorization": f"Bearer {key}"},
            data={"name": "big"},
            files={"file": ("big.zip", handle, "application/zip")},
            timeout=600,
        )
    assert response.status_code == 202, response.text[:500]
    after = {pid: peak_rss_kib(pid) for pid in before}
    growth_mib = max(after[pid] - before[pid] for pid in before) / 1024
    print(f"peak RSS growth of the web workers: {growth_mib:.1f} MiB for a 1 GiB upload")
    # A buffered upload would add about 1024 MiB; streamed, the peak barely moves.
    assert growth_mib < 64, f"a web worker's peak memory grew by {growth_mib:.0f} MiB"
    stored = Path(embedded_stack.data_dir, "media", "orgs")
    assert any(p.stat().st_size > GIB for p in stored.rglob("source.zip"))
