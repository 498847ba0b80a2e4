"""Training runs through the portal's services on the real database: every template trains,
runs are deterministic, cancellable, given up after three attempts, recorded as usage, and their
evaluations can be recomputed from the stored model."""

from __future__ import annotations

import csv
import gzip
import io
import math
from datetime import timedelta
from pathlib import Path

import plotly
import pytest
import torch
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.analytics.models import UsageEvent
from apps.core.jobs import MAX_ATTEMPTS, JobStatus, job_claim
from apps.core.scoping import tenant_scope
from apps.datasets.services import dataset_version_ingest
from apps.training.execution import training_run_execute
from apps.training.models import EpochMetric, ModelVersion, TrainingRun
from apps.training.services import (
    model_config_create,
    training_run_cancel,
    training_run_start,
)
from apps.training.templates import TEMPLATES
from workers.ml.architectures import IMAGE_TEMPLATES
from workers.ml.checkpoint import load_bundle
from workers.ml.predictor import load_predictor

GAPMINDER = Path(plotly.__file__).parent / "package_data" / "datasets" / "gapminder.csv.gz"


def start(tenant, version, template: str = "leptonnet", **knobs):
    config = model_config_create(
        organization=tenant.organization,
        user=tenant.user,
        name=f"{template} model",
        template=template,
        dataset_version=version,
        hyperparameters=knobs,
    )
    return training_run_start(model_config=config, user=tenant.user)


def version_of(run: TrainingRun) -> ModelVersion:
    return ModelVersion.all_tenants.get(run=run)


IMAGE_KEYS = [key for key, t in TEMPLATES.items() if t.task == "image-classification"]


@pytest.mark.parametrize("template", IMAGE_KEYS)
def test_every_image_template_trains_a_few_steps(tenant, ready_version, template):
    smallest = IMAGE_TEMPLATES[template].min_input_size
    run = start(tenant, ready_version, template, epochs=1, batch_size=16, input_size=smallest)
    run = training_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.step == run.total_steps > 0
    assert run.device == "cpu" and run.gpu_seconds == 0.0
    version = version_of(run)
    assert version.task == "image-classification"
    assert version.input_size == smallest
    assert version.labels == ready_version.labels
    assert 0.0 <= version.accuracy <= 1.0
    assert run.checkpoint == ""  # the checkpoint is deleted once the model is stored


def gapminder_version(api, tenant, target: str = "lifeExp"):
    with gzip.open(GAPMINDER, "rt", encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    rows = [row for row in rows if row[header.index("year")] == "2007"]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    upload = SimpleUploadedFile("gapminder-2007.csv", buffer.getvalue().encode(), "text/csv")
    created = api.post(
        "/api/v1/datasets/", {"name": "Gapminder", "kind": "tabular", "file": upload}
    )
    assert created.status_code == 202, created.content
    version = dataset_version_ingest(version_id=created.json()["id"])
    confirmed = api.post(
        f"/api/v1/dataset-versions/{version.pk}/confirm/",
        {"target": target, "columns": {"centroid_lat": {"role": "feature"}}},
    )
    assert confirmed.status_code == 200, confirmed.content
    version.refresh_from_db()
    return version


@pytest.mark.parametrize("template", ["linear", "mlp"])
def test_a_regression_template_trains_on_a_real_table_and_its_scores_recompute(
    api, tenant, template
):
    version = gapminder_version(api, tenant)
    created = api.post(
        "/api/v1/models/",
        {
            "name": "life expectancy",
            "template": template,
            "dataset_version": str(version.pk),
            "hyperparameters": {"epochs": 60, "seed": 1},
            "start_training": True,
        },
    )
    assert created.status_code == 201, created.content
    run = TrainingRun.all_tenants.get(pk=created.json()["run"])
    assert run.queue == "cpu"  # tables train on the cpu queue
    run = training_run_execute(run_id=run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    model = version_of(run)
    assert model.task == "tabular-regression" and model.labels == [] and model.input_size == 0
    assert model.input_schema["target"] == "lifeExp" == version.schema["target"]
    evaluation = model.evaluation
    assert evaluation["target"] == "lifeExp"
    assert model.accuracy == evaluation["r2"]
    assert evaluation["r2"] > 0.3  # GDP and continent explain life expectancy well
    assert EpochMetric.all_tenants.filter(run=run, train_accuracy__isnull=True).count() == 60

    # Recompute MAE, RMSE and R² by predicting every evaluated row with the stored bundle.
    with tenant_scope(tenant.organization):
        from apps.datasets.tabular import iter_table

        header, *table = list(iter_table(version))
    records = [dict(zip(header, row, strict=True)) for row in table]
    split = evaluation["split"]
    rows = [r for r in records if r["__split"] == split and r["lifeExp"]]
    predictor = load_predictor(Path(model.file.path))
    predicted = predictor.predict_rows(rows)
    actual = [float(r["lifeExp"]) for r in rows]
    errors = [p - a for p, a in zip(predicted, actual, strict=True)]
    mae = sum(abs(e) for e in errors) / len(errors)
    rmse = math.sqrt(sum(e * e for e in errors) / len(errors))
    mean = sum(actual) / len(actual)
    r2 = 1 - sum(e * e for e in errors) / sum((a - mean) ** 2 for a in actual)
    assert evaluation["count"] == len(rows)
    assert evaluation["mae"] == pytest.approx(mae, rel=1e-4)
    assert evaluation["rmse"] == pytest.approx(rmse, rel=1e-4)
    assert evaluation["r2"] == pytest.approx(r2, rel=1e-4, abs=1e-4)
    for pair in evaluation["pairs"]:
        assert records[pair["row"] - 2]["country"] == pair["name"]


def test_a_regression_template_is_refused_on_images_and_the_reverse(api, tenant, ready_version):
    refused = api.post(
        "/api/v1/models/",
        {"name": "x", "template": "mlp", "dataset_version": str(ready_version.pk)},
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert "template" in error["fields"]
    assert "leptonnet" in error["message"]
    table = gapminder_version(api, tenant)
    refused = api.post(
        "/api/v1/models/", {"name": "x", "template": "resnet18", "dataset_version": str(table.pk)}
    )
    assert refused.status_code == 400
    assert "linear" in refused.json()["error"]["message"]


def test_same_seed_same_data_gives_the_same_weights(tenant, ready_version):
    knobs = {"epochs": 2, "batch_size": 8, "seed": 5, "crop_padding": 2, "brightness": 0.2}
    first = version_of(training_run_execute(run_id=start(tenant, ready_version, **knobs).pk))
    second = version_of(training_run_execute(run_id=start(tenant, ready_version, **knobs).pk))
    other = version_of(
        training_run_execute(run_id=start(tenant, ready_version, **(knobs | {"seed": 6})).pk)
    )
    a, b, c = (load_bundle(Path(v.file.path)).state_dict for v in (first, second, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert first.evaluation == second.evaluation


def test_mistakes_point_at_the_items_that_were_misclassified(tenant, ready_version):
    run = start(tenant, ready_version, epochs=1, batch_size=32, learning_rate=0.0001)
    model = version_of(training_run_execute(run_id=run.pk))
    mistakes = model.evaluation["mistakes"]
    confusion = model.evaluation["confusion"]
    wrong = sum(confusion[i][j] for i in range(len(confusion)) for j in range(len(confusion)))
    wrong -= sum(confusion[i][i] for i in range(len(confusion)))
    assert len(mistakes) == min(wrong, len(mistakes)) and mistakes
    with tenant_scope(tenant.organization):
        for mistake in mistakes:
            item = ready_version.items.get(pk=mistake["item"])
            assert item.label == mistake["true"] != mistake["predicted"]
            assert item.split == model.evaluation["split"]
    confidences = [m["confidence"] for m in mistakes]
    assert confidences == sorted(confidences, reverse=True)


def test_a_run_records_its_epochs_log_device_and_usage(tenant, ready_version):
    run = training_run_execute(run_id=start(tenant, ready_version, epochs=3, batch_size=16).pk)
    assert list(EpochMetric.all_tenants.filter(run=run).values_list("epoch", flat=True)) == [
        1,
        2,
        3,
    ]
    assert "Epoch 3/3" in run.log and "Done:" in run.log
    assert run.eta_seconds == 0.0 and run.images_per_second > 0
    event = UsageEvent.all_tenants.get(training_run=run)
    assert event.kind == UsageEvent.Kind.TRAINING
    assert (event.device, event.gpu_seconds) == ("cpu", 0.0)
    assert event.organization_id == tenant.organization.pk


def test_a_queued_run_that_is_cancelled_never_trains(api, tenant, ready_version):
    run = start(tenant, ready_version, epochs=1)
    response = api.post(f"/api/v1/runs/{run.pk}/cancel/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert tenant.user.email in response.json()["message"]
    assert training_run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.attempts == 0
    assert not ModelVersion.all_tenants.filter(run=run).exists()
    again = api.post(f"/api/v1/runs/{run.pk}/cancel/")
    assert again.status_code == 409
    assert "already ended" in again.json()["error"]["message"]


def test_a_run_cancelled_while_training_stops_and_stores_nothing(tenant, ready_version):
    """The cancel lands mid-epoch (from the progress callback, as the web would write it)."""
    from apps.training import run_session

    run = start(tenant, ready_version, epochs=5, batch_size=4)
    original = run_session.RunSession.on_progress
    seen = {"steps": []}

    def on_progress(self, progress):
        original(self, progress)
        seen["steps"].append(progress.step)
        if progress.step == 3:
            training_run_cancel(run=TrainingRun.all_tenants.get(pk=run.pk), user=tenant.user)
            self.should_stop._next = 0.0  # the next check reads the row at once

    run_session.RunSession.on_progress = on_progress
    try:
        finished = training_run_execute(run_id=run.pk)
    finally:
        run_session.RunSession.on_progress = original
    assert finished.status == JobStatus.CANCELLED
    assert max(seen["steps"]) == 3  # not one more step after the cancel was seen
    assert not ModelVersion.all_tenants.filter(run=run).exists()
    assert finished.checkpoint == ""
    assert not UsageEvent.all_tenants.filter(training_run=run).exists()


def test_a_run_whose_worker_keeps_dying_is_failed_after_three_attempts(tenant, ready_version):
    run = start(tenant, ready_version, epochs=1)
    for _attempt in range(MAX_ATTEMPTS):
        assert job_claim(TrainingRun, run.pk) is not None
        # The worker dies: nobody renews the lease, which runs out.
        TrainingRun.all_tenants.filter(pk=run.pk).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1),
            message="Epoch 1 of 1",
        )
    assert training_run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert f"{MAX_ATTEMPTS} attempts" in run.message
    assert "never finished" in run.error
    assert not ModelVersion.all_tenants.filter(run=run).exists()


def test_a_stored_checkpoint_is_continued_and_then_deleted(tenant, ready_version):
    """An attempt that died after epoch 2 left its checkpoint in storage; the next continues."""
    from apps.training import run_session

    run = start(tenant, ready_version, epochs=4, batch_size=16, seed=2)
    original = run_session.RunSession.on_checkpoint
    stored: list[str] = []

    class Killed(BaseException):
        """Stands in for SIGKILL: nothing after it runs (tests/e2e kills a real worker)."""

    def on_checkpoint(self, path):
        original(self, path)
        stored.append(self.run.checkpoint)
        if len(stored) == 2:
            raise Killed

    run_session.RunSession.on_checkpoint = on_checkpoint
    try:
        with pytest.raises(Killed):
            training_run_execute(run_id=run.pk)
    finally:
        run_session.RunSession.on_checkpoint = original
    run.refresh_from_db()
    assert run.checkpoint == stored[-1] and default_storage.exists(run.checkpoint)
    assert not default_storage.exists(stored[0])  # the older one was replaced
    TrainingRun.all_tenants.filter(pk=run.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    finished = training_run_execute(run_id=run.pk)
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    assert finished.attempts == 2 and finished.resumed_from_epoch == 2
    assert "Continuing from the last stored checkpoint" in finished.log
    assert finished.checkpoint == "" and not default_storage.exists(stored[-1])
    epochs = EpochMetric.all_tenants.filter(run=finished).values_list("epoch", flat=True)
    assert list(epochs) == [1, 2, 3, 4]

    # Exactly the weights of an uninterrupted run with the same settings.
    straight = training_run_execute(
        run_id=start(tenant, ready_version, epochs=4, batch_size=16, seed=2).pk
    )
    a = load_bundle(Path(version_of(finished).file.path)).state_dict
    b = load_bundle(Path(version_of(straight).file.path)).state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_queue_position_counts_runs_ahead_on_the_same_queue(api, tenant, outsider, ready_version):
    first = start(tenant, ready_version, epochs=1)
    second = start(tenant, ready_version, epochs=1)
    body = api.get(f"/api/v1/runs/{second.pk}/").json()
    assert body["queue"] == "gpu"
    ahead = TrainingRun.all_tenants.filter(
        status="queued", created_at__lt=second.created_at
    ).count()
    assert body["queue_position"] == ahead + 1 >= 2
    training_run_execute(run_id=first.pk)
    assert api.get(f"/api/v1/runs/{second.pk}/").json()["queue_position"] == ahead
    training_run_execute(run_id=second.pk)
    assert api.get(f"/api/v1/runs/{second.pk}/").json()["queue_position"] is None


def test_the_leaderboard_ranks_a_datasets_models_best_first(
    api, client, outsider, tenant, ready_version
):
    weak = training_run_execute(
        run_id=start(tenant, ready_version, epochs=1, learning_rate=0.00001).pk
    )
    strong = training_run_execute(run_id=start(tenant, ready_version, epochs=4).pk)
    response = api.get(f"/api/v1/datasets/{ready_version.dataset.pk}/leaderboard/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["metric"] == "accuracy"
    entries = body["entries"]
    assert {e["run"] for e in entries} == {str(weak.pk), str(strong.pk)}
    scores = [e["accuracy"] for e in entries]
    assert scores == sorted(scores, reverse=True)
    assert [e["rank"] for e in entries] == [1, 2]
    assert all(e["macro_f1"] is not None and e["device"] == "cpu" for e in entries)
    for entry in entries:
        stored = ModelVersion.all_tenants.get(pk=entry["model_version"]).evaluation
        for average in ("macro", "weighted"):
            for score in ("precision", "recall", "f1"):
                assert entry[f"{average}_{score}"] == stored[f"{average}_{score}"]
    outsider_view = client.get(
        f"/api/v1/datasets/{ready_version.dataset.pk}/leaderboard/", **outsider.auth
    )
    assert outsider_view.status_code == 404
