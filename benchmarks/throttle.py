"""Benchmark: does the per-key rate limit hold when requests arrive all at once?

    make bench-throttle          # or: .venv/bin/python benchmarks/throttle.py --rounds 5

1. starts the real portal as `manage.py serve` does (tests/e2e/stack.py: gunicorn with 2
   worker processes of 4 threads each, and a Celery worker) on a throwaway LEPTON_DATA_DIR
   under var/: SQLite and the file-based throttle cache of the embedded default, or PostgreSQL
   and Redis when DATABASE_URL and REDIS_URL are set;
2. signs up an organization and gives it a limit of `--limit` (20) API requests per minute per
   key (an override over its plan, apps.quotas.services.quota_override_set);
3. per round, makes a fresh API key and fires `--requests` (50) requests at once from as many
   threads (GET /api/v1/templates/, an authenticated API call that reads no tenant rows), and
   counts the answers: 200 admitted, 429 refused (each 429 must carry Retry-After);
4. writes benchmarks/results/throttle.json with every round and the machine described.

The issue asks for 20 ± 20 % admitted (16 to 24) of 50 parallel requests under a limit of 20;
the counts are kept in the shared cache with add + incr under one lock, so the expected figure
is exactly the limit whatever the spread over the web processes. Each round uses its own key,
so its window is fresh; the organization's own limit (the plan's 1,200 a minute) is far above.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "throttle.json"

from tests.e2e.stack import start_stack  # noqa: E402

SETUP = """
from apps.accounts.services import api_key_create, user_signup
from apps.quotas.services import quota_override_set
from apps.tenants.models import Organization
org = Organization.objects.filter(slug="throttle-bench").first()
if org is None:
    user, org = user_signup(
        email="bench@throttle.example", password="Bench-throttle-2026",
        organization_name="throttle bench",
    )
    quota_override_set(organization=org, api_requests_per_minute_per_key={limit})
user = org.memberships.get().user
for n in range({rounds}):
    _key, raw = api_key_create(organization=org, user=user, name=f"round {{n}}")
    print("KEY", raw)
"""


def fire(base_url: str, raw_key: str, n: int) -> dict:
    """`n` requests at once (a barrier releases every thread together); the answers counted."""
    barrier = Barrier(n)

    def one(_i: int) -> tuple[int, str | None]:
        # base_url is the stack's own http://127.0.0.1:<port>, never a scheme from outside.
        request = urllib.request.Request(  # noqa: S310
            base_url + "/api/v1/templates/", headers={"Authorization": f"Bearer {raw_key}"}
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return response.status, None
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Retry-After")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(one, range(n)))
    seconds = time.perf_counter() - started
    statuses = Counter(status for status, _ in answers)
    retry_after = [int(wait) for status, wait in answers if status == 429 and wait]
    return {
        "admitted": statuses.get(200, 0),
        "refused": statuses.get(429, 0),
        "other": {str(k): v for k, v in statuses.items() if k not in (200, 429)},
        "refusals_with_retry_after": len(retry_after),
        "retry_after_s": [min(retry_after), max(retry_after)] if retry_after else None,
        "seconds": round(seconds, 3),
    }


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    backend = "postgres-redis" if os.environ.get("DATABASE_URL") else "embedded"
    (ROOT / "var").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-throttle-", dir=ROOT / "var"))
    stack = start_stack(backend, folder)
    try:
        out = stack.manage("shell", "-c", SETUP.format(limit=args.limit, rounds=args.rounds))
        keys = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("KEY ")]
        rounds = []
        for n, key in enumerate(keys, 1):
            result = fire(stack.base_url, key, args.requests)
            rounds.append(result)
            print(
                f"round {n}: {result['admitted']} of {args.requests} admitted, "
                f"{result['refused']} refused with 429 ({result['seconds']} s)",
                flush=True,
            )
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)

    admitted = [r["admitted"] for r in rounds]
    low, high = args.limit * 0.8, args.limit * 1.2
    summary = {
        "bench": "throttle",
        "backend": backend,
        "web": "gunicorn, 2 worker processes x 4 threads",
        "limit_per_minute_per_key": args.limit,
        "parallel_requests": args.requests,
        "admitted_median": statistics.median(admitted),
        "admitted_each_round": admitted,
        "within_20_percent": all(low <= a <= high for a in admitted),
        "every_refusal_has_retry_after": all(
            r["refusals_with_retry_after"] == r["refused"] for r in rounds
        ),
        "rounds": rounds,
        "machine": machine(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=2))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
