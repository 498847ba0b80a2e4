"""A web process starting (gunicorn importing lepton_portal.wsgi, or an ASGI server importing
lepton_portal.asgi) removes what killed web processes left in the upload folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["lepton_portal.wsgi", "lepton_portal.asgi"])
def test_starting_removes_old_leftover_uploads(tmp_path, module):
    folder = tmp_path / "tmp" / "uploads"
    folder.mkdir(parents=True)
    old, fresh = folder / "tmpold.upload.zip", folder / "tmpnew.upload.zip"
    for path in (old, fresh):
        path.write_bytes(b"partial")
    day_and_more = time.time() - 25 * 3600
    os.utime(old, (day_and_more, day_and_more))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="lepton_portal.settings", LEPTON_DATA_DIR=str(tmp_path))

    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert not old.exists()
    assert fresh.exists()
