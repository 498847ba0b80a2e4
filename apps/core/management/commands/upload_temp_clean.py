"""Remove uploads that killed web processes left in the upload folder (e.g. from cron on a
host that runs web processes but no worker)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.core.uploads import upload_leftovers_remove, upload_temp_dir


class Command(BaseCommand):
    help = (
        "Delete files in FILE_UPLOAD_TEMP_DIR older than LEPTON_UPLOAD_TMP_MAX_AGE_HOURS "
        "(what each web process also does as it starts)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--max-age-hours", type=float, default=None, help="instead of the setting"
        )

    def handle(self, *args: Any, max_age_hours: float | None, **options: Any) -> None:
        removed = upload_leftovers_remove(max_age_hours=max_age_hours)
        self.stdout.write(f"removed {removed} file(s) from {upload_temp_dir()}")
