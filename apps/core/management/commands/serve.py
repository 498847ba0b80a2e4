"""Start the web server and a Celery worker together, as `make run` does."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from lepton_portal.processes import web_command, worker_command


class Command(BaseCommand):
    help = "Run the web server (gunicorn) and a Celery worker until interrupted."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args: Any, host: str, port: int, concurrency: int, **options: Any) -> None:
        processes = [
            subprocess.Popen(worker_command(concurrency=concurrency)),
            subprocess.Popen(web_command(host=host, port=port)),
        ]
        backend = (
            "PostgreSQL" if "postgres" in settings.DATABASES["default"]["ENGINE"] else "SQLite"
        )
        broker = "Redis" if settings.REDIS_URL else "filesystem broker"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nLepton Portal is running on {backend} + {broker}.\n"
                f"  Open      http://{host}:{port}/\n"
                f"  Admin     http://{host}:{port}/admin/\n"
                f"  API       http://{host}:{port}/api/v1/  (schema: /api/v1/schema/)\n"
                f"  Email     {_mail_destination()}\n"
                "Press Ctrl-C to stop.\n"
            )
        )
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(p.poll() is None for p in processes):
                time.sleep(0.5)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        failed = [p for p in processes if p.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stopping:
            sys.exit(1)


def _mail_destination() -> str:
    """Where the portal's email goes, so a password-reset link can be found without a mail
    server."""
    if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
        return f"written as files into {settings.EMAIL_FILE_PATH}"
    return f"sent through {settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
