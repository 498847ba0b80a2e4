"""Training survives its worker: a worker killed with SIGKILL mid-run costs at most one epoch
(the run continues from its stored checkpoint on the next worker and ends with exactly one
model version), and a cancelled run stops and frees the worker for the next one. Real
processes: gunicorn, Celery workers with beat (the reaper), on each backend."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import _backend_available
from tests.e2e.stack import BACKENDS, start_stack
from tests.e2e.test_journey_api import signup, wait_for
from tests.support.shapes import make_class_zip

pytestmark = pytest.mark.e2e

# A short lease and a frequent reaper, so a dead worker's run is re-sent within seconds.
RECOVERY_ENV = {
    "LEPTON_JOB_LEASE_SECONDS": "4",
    "LEPTON_REAP_INTERVAL_SECONDS": "1",
    "LEPTON_JOB_REQUEUE_SECONDS": "30",
    "LEPTON_CANCEL_POLL_SECONDS": "0.1",
}


@pytest.fixture(scope="module", params=BACKENDS)
def recovery_stack(request, tmp_path_factory):
    if not _backend_available(request.param):
        pytest.skip("DATABASE_URL and REDIS_URL are not set")
    running = start_stack(
        request.param,
        tmp_path_factory.mktemp(f"recovery-{request.param}"),
        worker_concurrency=1,
        extra_env=RECOVERY_ENV,
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def customer(recovery_stack):
    """A signed-up customer with a ready dataset of 40 shapes per class."""
    api = signup(recovery_stack.base_url, "owner@recovery.example", "Recovery Ltd")
    base = recovery_stack.base_url + "/api/v1"
    created = api.post(
        f"{base}/datasets/",
        data={"name": "shapes"},
        files={"file": ("shapes.zip", make_class_zip(per_class=40, seed=11))},
        timeout=60,
    )
    assert created.status_code == 202, created.text
    version = created.json()["id"]
    wait_for(
        lambda: api.get(f"{base}/dataset-versions/{version}/", timeout=30).json()["status"],
        lambda status: status in ("succeeded", "failed"),
    )
    return api, base, version


def start_run(api, base: str, version: str, **knobs) -> str:
    created = api.post(
        f"{base}/models/",
        json={
            "name": "recovery",
            "template": "leptonnet",
            "dataset_version": version,
            "hyperparameters": {"batch_size": 4, "input_size": 48} | knobs,
            "start_training": True,
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return created.json()["run"]


def test_a_worker_killed_mid_run_costs_at_most_one_epoch(recovery_stack, customer):
    api, base, version = customer
    run_id = start_run(api, base, version, epochs=8, seed=4)

    def fetch() -> dict:
        return api.get(f"{base}/runs/{run_id}/", timeout=30).json()

    # Let it finish two epochs (their checkpoints stored), then kill it inside the third.
    wait_for(fetch, lambda run: run["epoch"] >= 3 and run["step"] > 0, timeout=300)
    at_kill = fetch()
    assert at_kill["status"] == "running"
    assert recovery_stack.kill_workers()
    killed_in_epoch = fetch()["epoch"]

    recovery_stack.add_worker(concurrency=1)
    final = wait_for(
        fetch, lambda run: run["status"] in ("succeeded", "failed", "cancelled"), timeout=300
    )[-1]
    assert final["status"] == "succeeded", (final, recovery_stack.log_tail())
    assert final["attempts"] == 2
    # It continued from the last finished epoch: at most the interrupted one was repeated.
    assert final["resumed_from_epoch"] >= killed_in_epoch - 1 >= 2
    assert any("Continuing from the last stored checkpoint" in line for line in final["log_tail"])
    assert [e["epoch"] for e in final["epochs"]] == list(range(1, 9))

    versions = api.get(f"{base}/model-versions/", timeout=30).json()
    mine = [v for v in versions["results"] if v["run"] == run_id]
    assert len(mine) == 1, versions
    evaluation = api.get(f"{base}/runs/{run_id}/evaluation/", timeout=30)
    assert evaluation.status_code == 200 and evaluation.json()["evaluation"]["count"] > 0
    # The checkpoint was deleted once the model was stored.
    runs_dir = recovery_stack.data_dir / "media" / "orgs"
    assert not list(runs_dir.glob(f"*/runs/{run_id}/*")), list(runs_dir.glob("*/runs/*/*"))


def test_cancel_stops_a_running_run_and_frees_its_worker(recovery_stack, customer):
    api, base, version = customer
    long_run = start_run(api, base, version, epochs=200)
    next_run = start_run(api, base, version, epochs=1)

    def fetch(run_id: str) -> dict:
        return api.get(f"{base}/runs/{run_id}/", timeout=30).json()

    wait_for(lambda: fetch(long_run), lambda run: run["step"] > 0, timeout=300)
    waiting = fetch(next_run)
    assert waiting["status"] == "queued" and waiting["queue_position"] == 1

    cancelled = api.post(f"{base}/runs/{long_run}/cancel/", timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    # The single worker process is free again: the queued run trains to the end.
    done = wait_for(
        lambda: fetch(next_run)["status"], lambda s: s in ("succeeded", "failed"), timeout=300
    )
    assert done[-1] == "succeeded", recovery_stack.log_tail()
    time.sleep(1)
    stopped = fetch(long_run)
    assert stopped["status"] == "cancelled" and stopped["model_version"] is None
    assert stopped["epoch"] < 200
    assert api.post(f"{base}/runs/{long_run}/cancel/", timeout=30).status_code == 409
