"""Uploads stream to the portal's own folder, and what killed processes left there is removed:
only files, only in that folder, only older than LEPTON_UPLOAD_TMP_MAX_AGE_HOURS."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.management import call_command

from apps.core.uploads import upload_leftovers_remove, upload_temp_dir
from workers.tasks.maintenance import upload_leftovers_remove_task

HOUR = 3600


def write(path: Path, *, hours_old: float) -> Path:
    path.write_bytes(b"partial upload")
    stamp = time.time() - hours_old * HOUR
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def folder(tmp_path, settings):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    settings.LEPTON_UPLOAD_TMP_MAX_AGE_HOURS = 24
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()
    return Path(settings.FILE_UPLOAD_TEMP_DIR)


def test_the_folder_is_the_portals_own_and_exists():
    folder = upload_temp_dir()
    assert folder == Path(settings.DATA_DIR) / "tmp" / "uploads"
    assert folder.is_dir()


def test_django_spools_an_upload_into_it():
    with TemporaryUploadedFile("big.zip", "application/zip", 0, None) as upload:
        assert Path(upload.temporary_file_path()).parent == upload_temp_dir()


def test_it_removes_only_old_files_in_the_folder(folder, tmp_path):
    old = write(folder / "tmpa1b2.upload.zip", hours_old=25)
    also_old = write(folder / "tmpc3d4.upload.csv", hours_old=24 * 30)
    fresh = write(folder / "tmpe5f6.upload.zip", hours_old=23)
    arriving = write(folder / "tmpg7h8.upload.png", hours_old=0)
    # Not a file of the folder's own: a folder in it, a link in it, a file outside it.
    (folder / "nested").mkdir()
    nested = write(folder / "nested" / "deep.upload", hours_old=48)
    outside = write(tmp_path / "elsewhere.upload.zip", hours_old=48)
    link = folder / "link.upload"
    link.symlink_to(outside)
    stamp = time.time() - 48 * HOUR
    os.utime(link, (stamp, stamp), follow_symlinks=False)

    assert upload_leftovers_remove() == 2

    assert not old.exists() and not also_old.exists()
    assert fresh.exists() and arriving.exists()
    assert nested.exists() and outside.exists() and link.is_symlink()


def test_the_age_is_a_setting(folder, settings):
    settings.LEPTON_UPLOAD_TMP_MAX_AGE_HOURS = 1
    two_hours = write(folder / "tmp1.upload", hours_old=2)
    half_hour = write(folder / "tmp2.upload", hours_old=0.5)
    assert upload_leftovers_remove() == 1
    assert not two_hours.exists() and half_hour.exists()


def test_the_periodic_upkeep_runs_it(folder):
    write(folder / "tmp1.upload", hours_old=30)
    assert upload_leftovers_remove_task() == 1
    assert upload_leftovers_remove_task() == 0
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "workers.tasks.maintenance.upload_leftovers_remove_task" in tasks


def test_the_command_runs_it(folder, capsys):
    write(folder / "tmp1.upload", hours_old=30)
    young = write(folder / "tmp2.upload", hours_old=3)
    call_command("upload_temp_clean", "--max-age-hours", "2")
    assert not any(folder.iterdir()), young
    assert "removed 2 file(s)" in capsys.readouterr().out


def test_without_a_folder_of_its_own_it_touches_nothing(settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = None
    assert upload_temp_dir() is None
    assert upload_leftovers_remove() == 0


def test_a_missing_folder_is_not_an_error(settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "gone")
    assert upload_leftovers_remove() == 0
