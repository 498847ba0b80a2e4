"""The command lines of the portal's processes, shared by `manage.py serve` and the e2e tests,
so the tests start exactly what `make run` starts."""

from __future__ import annotations

import socket
import sys

#: seconds gunicorn keeps an idle keep-alive connection open. Clients poll job status every few
#: seconds (the README suggests 1 to 5); gunicorn's default of 2 s closed connections under
#: them ("Remote end closed connection without response"). 75 s also outlasts the idle
#: timeout of common load balancers (60 s), which must close first, not the portal.
KEEP_ALIVE_SECONDS = 75


def web_command(*, host: str = "127.0.0.1", port: int = 8000, workers: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "lepton_portal.wsgi",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "--timeout",
        "120",
        "--keep-alive",
        str(KEEP_ALIVE_SECONDS),
        "--access-logfile",
        "-",
    ]


def worker_command(
    *, queues: str = "cpu,gpu", concurrency: int = 2, name: str | None = None, beat: bool = True
) -> list[str]:
    """A worker for `queues`; with `beat`, it also runs the periodic reaper (one per site)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "lepton_portal",
        "worker",
        "--queues",
        queues,
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
        "--hostname",
        name or f"lepton-{queues.replace(',', '-')}@{socket.gethostname()}",
        *(["--beat"] if beat else []),
    ]
