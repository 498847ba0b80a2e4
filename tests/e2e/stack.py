"""Start the portal's real processes (gunicorn + a Celery worker) for end-to-end tests.

Two backends: "embedded" (SQLite file + Celery filesystem broker, what `make run` uses) and
"postgres-redis" (a fresh PostgreSQL database from DATABASE_URL and a Redis database from
REDIS_URL). The processes are started with the same command lines as `manage.py serve`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from lepton_portal.processes import web_command, worker_command

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("embedded", "postgres-redis")


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    backend: str
    base_url: str
    data_dir: Path
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    cleanups: list = field(default_factory=list)
    workers: list[subprocess.Popen] = field(default_factory=list)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode:
            raise StackError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def add_worker(self, *, concurrency: int = 2, wait: bool = True) -> subprocess.Popen:
        """Start one more Celery worker, exactly as `manage.py serve` starts one."""
        name = f"e2e-{uuid.uuid4().hex[:6]}"
        log = self.data_dir / f"worker-{name}.log"
        self.logs.insert(len(self.workers), log)
        process = subprocess.Popen(
            worker_command(concurrency=concurrency, name=f"{name}@%h"),
            cwd=ROOT,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        self.workers.append(process)
        deadline = time.monotonic() + 90
        while wait and " ready." not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"the new worker did not start:\n{self.log_tail()}")
            time.sleep(0.2)
        return process

    def kill_workers(self) -> list[int]:
        """SIGKILL every worker process and its pool children, as a crashed machine would."""
        killed = []
        for worker in self.workers:
            if worker.poll() is None:
                for pid in [*_descendants(worker.pid), worker.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                worker.wait(timeout=30)
        return killed

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
            for p in self.logs
            if p.exists()
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for cleanup in reversed(self.cleanups):
            cleanup()


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, found through /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _postgres_database(env: dict[str, str], stack_cleanups: list) -> str:
    """A new, empty database on the server of DATABASE_URL; dropped when the stack stops."""
    import psycopg

    base = os.environ["DATABASE_URL"]
    name = f"lepton_e2e_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise StackError(f"PostgreSQL at DATABASE_URL is unreachable: {exc}") from exc

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    stack_cleanups.append(drop)
    return urlunparse(urlparse(base)._replace(path=f"/{name}"))


# Redis databases for stacks, one each: two stacks alive at once (the journey's, a test
# module's own) must not share a broker, or one's worker takes the other's messages.
_REDIS_DATABASES = iter(range(14, 7, -1))


def _redis_database() -> str:
    """REDIS_URL pointed at a database of its own (14, then 13, ...), emptied first."""
    import redis

    number = next(_REDIS_DATABASES, None)
    if number is None:
        raise StackError("too many PostgreSQL + Redis stacks in one test session")
    url = urlunparse(urlparse(os.environ["REDIS_URL"])._replace(path=f"/{number}"))
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).flushdb()
    except redis.RedisError as exc:
        raise StackError(f"Redis at REDIS_URL is unreachable: {exc}") from exc
    return url


def start_stack(
    backend: str,
    data_dir: Path,
    *,
    worker_concurrency: int = 2,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="lepton_portal.settings",
        LEPTON_DATA_DIR=str(data_dir),
        LEPTON_PROGRESS_INTERVAL="0.25",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
        # Every browser test signs up its own organization from 127.0.0.1 on one shared stack;
        # the per-address sign-up budget (30 an hour) is for the Internet, not for this suite.
        # The per-account budgets stay as shipped (the throttle's browser test relies on them).
        LEPTON_SIGNUP_RATE_PER_ADDRESS="10000/hour",
        **(extra_env or {}),
    )
    port = free_port()
    stack = Stack(backend=backend, base_url=f"http://127.0.0.1:{port}", data_dir=data_dir, env=env)
    if backend == "postgres-redis":
        if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
            raise StackError("set DATABASE_URL and REDIS_URL to run on PostgreSQL + Redis")
        env["DATABASE_URL"] = _postgres_database(env, stack.cleanups)
        env["REDIS_URL"] = _redis_database()
    try:
        stack.manage("migrate", "--noinput", "-v0")
        stack.manage("collectstatic", "--noinput", "-v0")
        stack.add_worker(concurrency=worker_concurrency, wait=False)
        log = data_dir / "web.log"
        stack.logs.append(log)
        stack.processes.append(
            subprocess.Popen(
                web_command(port=port),
                cwd=ROOT,
                env=env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        _wait_until_up(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def _wait_until_up(stack: Stack, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    web_up = worker_up = False
    while time.monotonic() < deadline:
        for process in stack.processes:
            if process.poll() is not None:
                raise StackError(f"a process exited early:\n{stack.log_tail()}")
        if not web_up:
            try:
                with urllib.request.urlopen(stack.base_url + "/accounts/login/", timeout=2) as r:
                    web_up = r.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
        worker_log = stack.logs[0].read_text(errors="replace") if stack.logs[0].exists() else ""
        worker_up = worker_up or " ready." in worker_log
        if web_up and worker_up:
            return
        time.sleep(0.3)
    raise StackError(f"the stack did not come up in {timeout:.0f}s:\n{stack.log_tail()}")
