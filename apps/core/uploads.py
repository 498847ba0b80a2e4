"""The folder where uploads stream while they arrive, and the removal of what dead processes
left in it.

Django writes an upload larger than FILE_UPLOAD_MAX_MEMORY_SIZE to a temporary file in
FILE_UPLOAD_TEMP_DIR and deletes it when the request ends. A web process killed mid-upload
(out of memory, a deploy, a crash) never gets there, so its partial file stays behind. The
folder belongs to the portal ($LEPTON_DATA_DIR/tmp/uploads), not the system's /tmp, so those
leftovers are found and removed: by each web process as it starts (lepton_portal.wsgi), by the
periodic upkeep (workers.tasks.maintenance) and by `manage.py upload_temp_clean`.

Only plain files directly in that folder, last written longer ago than
LEPTON_UPLOAD_TMP_MAX_AGE_HOURS, are removed: an upload still arriving writes to its file all
the time, and nothing outside the folder is touched.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


def upload_temp_dir() -> Path | None:
    """The portal's upload folder, or None when FILE_UPLOAD_TEMP_DIR is not set (then Django
    uses the system's temporary folder, which is not the portal's to clean)."""
    folder = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
    return Path(folder) if folder else None


def upload_leftovers_remove(*, max_age_hours: float | None = None) -> int:
    """Delete the upload folder's files older than `max_age_hours` (default: the setting);
    returns how many were removed."""
    folder = upload_temp_dir()
    if folder is None:
        return 0
    if max_age_hours is None:
        max_age_hours = settings.LEPTON_UPLOAD_TMP_MAX_AGE_HOURS
    cutoff = time.time() - max_age_hours * 3600
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            # lstat: a symbolic link is not followed, and is not a file of ours to judge.
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue  # removed meanwhile, by its request or by another process cleaning
    if removed:
        logger.warning("removed %d upload(s) left behind in %s", removed, folder)
    return removed
