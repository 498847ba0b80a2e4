"""A web process killed mid-upload leaves its partial file in the portal's own upload folder
($LEPTON_DATA_DIR/tmp/uploads), not in /tmp, and the next web process to start removes it once
it is older than LEPTON_UPLOAD_TMP_MAX_AGE_HOURS (a fresh one stays: it may still be arriving)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

PASSWORD = "Corr3ct-horse-battery"
BOUNDARY = "lepton-e2e-boundary"
MIB = 1024 * 1024


def api_key(base: str) -> str:
    requests.post(
        f"{base}/api/v1/auth/signup/",
        json={"email": "tmp@upload.example", "password": PASSWORD, "organization_name": "Tmp"},
        timeout=30,
    ).raise_for_status()
    return requests.post(
        f"{base}/api/v1/api-keys/",
        json={"name": "tmp"},
        auth=("tmp@upload.example", PASSWORD),
        timeout=30,
    ).json()["key"]


def start_upload(base: str, key: str, *, total: int, sent: int) -> socket.socket:
    """POST a multipart dataset upload that announces `total` bytes of file but sends `sent`,
    so the request is still arriving when the test looks (and kills the process)."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\nkilled\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    host, port = base.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.sendall(
        (
            "POST /api/v1/datasets/ HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            f"Authorization: Bearer {key}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(head) + total + len(tail)}\r\n\r\n"
        ).encode()
        + head
    )
    chunk = b"\0" * MIB
    for _ in range(sent // MIB):
        connection.sendall(chunk)
    return connection


def web_workers(stack) -> list[int]:
    """The pids of gunicorn's worker processes (the children of its master)."""
    master = next(
        p for p in stack.processes if b"gunicorn" in Path(f"/proc/{p.pid}/cmdline").read_bytes()
    )
    return [
        int(pid)
        for pid in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    ]


def kill_web_workers(stack) -> None:
    """SIGKILL gunicorn's workers, as the out-of-memory killer would, and wait until the
    master has started new ones that answer (each imports lepton_portal.wsgi as it starts)."""
    old = web_workers(stack)
    for pid in old:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        new = web_workers(stack)
        if len(new) == len(old) and not set(new) & set(old):
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{stack.base_url}/accounts/login/", timeout=5).ok:
                    return
        time.sleep(0.3)
    raise AssertionError(f"gunicorn did not start new workers:\n{stack.log_tail()}")


def wait_for_partial(folder: Path, at_least: int) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in folder.glob("*.upload*"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size >= at_least:
                    return path
        time.sleep(0.1)
    raise AssertionError(f"no upload arrived in {folder}: {list(folder.iterdir())}")


def age(path: Path, hours: float) -> None:
    stamp = time.time() - hours * 3600
    os.utime(path, (stamp, stamp))


def test_a_killed_web_process_leaves_its_upload_where_the_next_one_removes_it(embedded_stack):
    folder = embedded_stack.data_dir / "tmp" / "uploads"
    key = api_key(embedded_stack.base_url)
    before = set(folder.iterdir())

    # Larger than FILE_UPLOAD_MAX_MEMORY_SIZE (2 MiB), so Django spools it to a file.
    connection = start_upload(embedded_stack.base_url, key, total=64 * MIB, sent=8 * MIB)
    try:
        partial = wait_for_partial(folder, at_least=4 * MIB)
        assert partial not in before
        kill_web_workers(embedded_stack)
    finally:
        connection.close()

    # The dead process never cleaned up: its file is still there, in the portal's folder.
    assert partial.exists() and partial.parent == folder
    assert partial.stat().st_size >= 4 * MIB
    # A day later, a web process starting removes it; a fresh file (an upload still arriving
    # in another process) stays.
    age(partial, 25)
    fresh = folder / "tmpfresh.upload.zip"
    fresh.write_bytes(b"still arriving")
    kill_web_workers(embedded_stack)
    assert not partial.exists()
    assert fresh.exists()
    fresh.unlink()
