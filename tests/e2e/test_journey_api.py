"""One customer's whole journey through the REST API, against the real processes: sign up, key,
upload, ingestion on the worker, training on the worker with live progress, evaluation,
deployment, prediction, usage. Runs on the embedded default and on PostgreSQL + Redis."""

from __future__ import annotations

import io
import time
import zipfile
from collections import Counter

import numpy as np
import pytest
import requests

from tests.support.shapes import SHAPE_CLASSES, image_bytes, make_class_zip, make_shape_image

pytestmark = pytest.mark.e2e

PASSWORD = "Corr3ct-horse-battery"
PER_CLASS = 40
SEED = 3


def wait_for(fetch, done, timeout: float = 240, interval: float = 0.1):
    """Poll fetch() until done(result); return every distinct result seen on the way."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = fetch()
        if not seen or result != seen[-1]:
            seen.append(result)
        if done(result):
            return seen
        time.sleep(interval)
    raise AssertionError(f"timed out; last state: {seen[-1] if seen else None}")


def signup(base: str, email: str, org: str) -> requests.Session:
    response = requests.post(
        f"{base}/api/v1/auth/signup/",
        json={"email": email, "password": PASSWORD, "organization_name": org},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    key = requests.post(
        f"{base}/api/v1/api-keys/", json={"name": "e2e"}, auth=(email, PASSWORD), timeout=30
    )
    assert key.status_code == 201, key.text
    assert key.json()["key"].startswith("lp_")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key.json()['key']}"
    return session


def test_it_runs_the_whole_journey(stack):
    base = stack.base_url + "/api/v1"
    api = signup(stack.base_url, f"owner-{stack.backend}@acme.example", "Acme Vision")
    outsider = signup(stack.base_url, f"owner-{stack.backend}@rival.example", "Rival Labs")

    # Bad uploads are refused up front with a message that says what to do.
    not_zip = api.post(
        f"{base}/datasets/",
        data={"name": "x"},
        files={"file": ("photos.zip", b"just text")},
        timeout=30,
    )
    assert not_zip.status_code == 400
    assert "photos.zip" in not_zip.json()["error"]["message"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "no images here")
    no_images = api.post(
        f"{base}/datasets/",
        data={"name": "x"},
        files={"file": ("empty.zip", buffer.getvalue())},
        timeout=30,
    )
    assert no_images.status_code == 400
    assert "no images" in no_images.json()["error"]["message"]

    # Upload; ingestion runs on the worker.
    archive = make_class_zip(
        per_class=PER_CLASS,
        seed=SEED,
        extra_entries={
            "circle/notes.txt": b"not an image",
            "square/broken.png": b"\x89PNG broken",
            "__MACOSX/circle/._circle_0.png": b"junk",
        },
    )
    upload = api.post(
        f"{base}/datasets/",
        data={"name": "Shapes"},
        files={"file": ("shapes.zip", archive)},
        timeout=60,
    )
    assert upload.status_code == 202, upload.text
    version_id = upload.json()["id"]
    states = wait_for(
        lambda: api.get(f"{base}/dataset-versions/{version_id}/", timeout=30).json(),
        lambda v: v["status"] in ("succeeded", "failed"),
    )
    version = states[-1]
    assert version["status"] == "succeeded", version
    assert version["ready"] is True
    assert {label: c["total"] for label, c in version["class_counts"].items()} == {
        label: PER_CLASS for label in SHAPE_CLASSES
    }
    skipped = {s["path"]: s["reason"] for s in version["skipped"]}
    assert set(skipped) == {
        "circle/notes.txt",
        "square/broken.png",
        "__MACOSX/circle/._circle_0.png",
    }
    assert "not an image file" in skipped["circle/notes.txt"]
    assert "not a readable image" in skipped["square/broken.png"]
    assert outsider.get(f"{base}/dataset-versions/{version_id}/", timeout=30).status_code == 404

    # Configure LeptonNet and train on the worker, watching progress move.
    model = api.post(
        f"{base}/models/",
        json={
            "name": "Shape sorter",
            "template": "leptonnet",
            "dataset_version": version_id,
            "hyperparameters": {
                "epochs": 12,
                "batch_size": 16,
                "learning_rate": 0.005,
                "input_size": 32,
            },
            "start_training": True,
        },
        timeout=30,
    )
    assert model.status_code == 201, model.text
    run_id = model.json()["run"]
    runs = wait_for(
        lambda: api.get(f"{base}/runs/{run_id}/", timeout=30).json(),
        lambda r: r["status"] in ("succeeded", "failed"),
    )
    run = runs[-1]
    assert run["status"] == "succeeded", run
    progress = [r["progress"] for r in runs]
    assert progress == sorted(progress), "progress went backwards"
    assert any(0 < p < 1 for p in progress), "no intermediate progress was ever reported"
    assert {r["status"] for r in runs} >= {"running", "succeeded"}
    assert [e["epoch"] for e in run["epochs"]] == list(range(1, 13))
    assert run["device"] in ("cpu", "cuda")

    # The evaluation on the held-out split.
    evaluation = api.get(f"{base}/runs/{run_id}/evaluation/", timeout=30)
    assert evaluation.status_code == 200
    model_version = evaluation.json()
    report = model_version["evaluation"]
    assert report["accuracy"] > 0.9, report
    assert sorted(c["label"] for c in report["per_class"]) == sorted(SHAPE_CLASSES)

    # Deploy and call it.
    endpoint = api.post(
        f"{base}/endpoints/", json={"model_version": model_version["id"]}, timeout=30
    )
    assert endpoint.status_code == 201, endpoint.text
    predict_url = stack.base_url + endpoint.json()["predict_url"]
    picture = image_bytes(make_shape_image("square", np.random.default_rng(2024)))
    answer = api.post(
        predict_url, files={"image": ("square.png", picture)}, data={"top_k": 2}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["predictions"]) == 2
    assert body["predictions"][0]["probability"] >= body["predictions"][1]["probability"]
    assert {p["label"] for p in body["predictions"]} <= set(SHAPE_CLASSES)
    assert body["model_version"] == model_version["id"]
    assert (
        outsider.post(predict_url, files={"image": ("s.png", picture)}, timeout=30).status_code
        == 404
    )
    bad = api.post(predict_url, files={"image": ("x.png", b"garbage")}, timeout=30)
    assert bad.status_code == 400

    # Recompute the reported accuracy: predict every test image through the endpoint.
    images = dict(_class_images(archive))
    test_items = _all_pages(api, f"{base}/dataset-versions/{version_id}/items/?split=test")
    assert len(test_items) == report["count"]
    labels = report["labels"]
    confusion = [[0] * len(labels) for _ in labels]
    for item in test_items:
        result = api.post(
            predict_url,
            files={"image": ("i.png", images[item["original_name"]])},
            data={"top_k": 1},
            timeout=60,
        ).json()
        confusion[labels.index(item["label"])][labels.index(result["predictions"][0]["label"])] += 1
    correct = sum(confusion[i][i] for i in range(len(labels)))
    assert confusion == report["confusion"]
    assert correct / len(test_items) == pytest.approx(report["accuracy"])

    # Every call was recorded as usage: the successful ones and the refused one; the training
    # run once, with its device.
    recorded = _all_pages(api, f"{base}/usage/")
    training = [u for u in recorded if u["kind"] == "training"]
    assert [(u["training_run"], u["device"]) for u in training] == [(run_id, "cpu")]
    usage = [u for u in recorded if u["kind"] == "predict"]
    calls = 2 + len(test_items)
    assert len(usage) == calls
    assert Counter(u["status_code"] for u in usage) == {200: calls - 1, 400: 1}
    assert all(u["endpoint"] == endpoint.json()["id"] and u["latency_ms"] > 0 for u in usage)
    assert _all_pages(outsider, f"{base}/usage/") == []


def _class_images(archive: bytes):
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        for name in zipped.namelist():
            if name.endswith(".png") and "/" in name and not name.startswith("__MACOSX"):
                yield name, zipped.read(name)


def _all_pages(session: requests.Session, url: str) -> list:
    results = []
    while url:
        page = session.get(url, timeout=30).json()
        results += page["results"]
        url = page["next"]
    return results
