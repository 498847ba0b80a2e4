"""Suspension end to end: a platform operator suspends an organization (`manage.py
organization_suspend`) while its run trains on a real worker; the run ends cancelled within a
few seconds, its API key gets 403 `suspended`, and the organization beside it carries on.
Resuming brings the key back; the cancelled run stays cancelled."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_journey_api import signup, wait_for
from tests.e2e.test_training_recovery import start_run
from tests.support.shapes import make_class_zip

pytestmark = pytest.mark.e2e


def test_suspending_stops_a_running_run_and_refuses_the_key_until_resumed(stack):
    base = stack.base_url + "/api/v1"
    slug = f"paused-{stack.backend}-corp"
    api = signup(stack.base_url, f"owner-{slug}@paused.example", slug.replace("-", " "))
    outsider = signup(stack.base_url, f"owner-{slug}@beside.example", f"Beside {slug}")
    created = api.post(
        f"{base}/datasets/",
        data={"name": "shapes"},
        files={"file": ("shapes.zip", make_class_zip(per_class=12, seed=5))},
        timeout=60,
    )
    assert created.status_code == 202, created.text
    version = created.json()["id"]
    wait_for(
        lambda: api.get(f"{base}/dataset-versions/{version}/", timeout=30).json()["status"],
        lambda status: status == "succeeded",
        timeout=120,
    )
    run_id = start_run(api, base, version, epochs=200)
    wait_for(
        lambda: api.get(f"{base}/runs/{run_id}/", timeout=30).json(),
        lambda run: run["status"] == "running" and run["step"] > 0,
        timeout=300,
    )

    out = stack.manage("organization_suspend", slug, "--reason", "Unpaid invoice")
    assert "1 job cancelled" in out, out
    # The worker notices at its next step (it polls the run's status) and lets the run go.
    wait_for(
        lambda: f"run {run_id} cancelled" in stack.log_tail(200_000),
        bool,
        timeout=60,  # generous for a loaded CI machine; the worker polls every 0.25 s
    )
    refused = api.get(f"{base}/runs/{run_id}/", timeout=30)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "suspended"
    assert "Unpaid invoice" in refused.json()["error"]["message"]
    assert outsider.get(f"{base}/datasets/", timeout=30).status_code == 200

    stack.manage("organization_suspend", slug, "--resume")
    run = api.get(f"{base}/runs/{run_id}/", timeout=30)
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "cancelled"
    assert run.json()["model_version"] is None
    step = run.json()["step"]
    time.sleep(1)
    assert api.get(f"{base}/runs/{run_id}/", timeout=30).json()["step"] == step
