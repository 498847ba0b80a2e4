"""Configuring models through the API and training them for real on the worker's service."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from apps.core.jobs import JobStatus
from apps.datasets.models import DatasetItem, Split
from apps.datasets.services import dataset_create, dataset_version_ingest
from apps.datasets.stored import item_read
from apps.training.execution import training_run_execute
from apps.training.models import EpochMetric, ModelConfig, ModelVersion, TrainingRun
from tests.conftest import zip_upload
from workers.ml.images import decode_image
from workers.ml.predictor import Predictor

MODELS = "/api/v1/models/"


def create(api, version, **fields):
    body = {
        "name": "shapes model",
        "template": "leptonnet",
        "dataset_version": str(version.pk),
        "hyperparameters": {"epochs": 1, "batch_size": 16},
    }
    return api.post(MODELS, body | fields)


def assert_nothing_configured() -> None:
    assert not ModelConfig.all_tenants.exists()
    assert not TrainingRun.all_tenants.exists()


@pytest.mark.parametrize(
    ("hyperparameters", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 201}, "epochs"),
        ({"batch_size": "abc"}, "batch_size"),
        ({"input_size": 1.5}, "input_size"),
        ({"learning_rate": 10**400}, "learning_rate"),
        ({"learning_rate": True}, "learning_rate"),
        ({"epochs": 2, "epoch": 3}, "epoch"),
    ],
)
def test_it_refuses_invalid_hyperparameters_naming_the_field(
    api, ready_version, outsider, hyperparameters, field
):
    r = create(api, ready_version, hyperparameters=hyperparameters)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert field in error["fields"]
    assert field in error["message"]
    assert_nothing_configured()


def test_it_refuses_hyperparameters_that_are_not_an_object(api, ready_version):
    r = create(api, ready_version, hyperparameters=[1, 2])
    assert r.status_code == 400
    assert "hyperparameters" in r.json()["error"]["fields"]
    assert_nothing_configured()


def test_it_refuses_an_unknown_template(api, ready_version):
    r = create(api, ready_version, template="gpt-17")
    assert r.status_code == 400
    assert "template" in r.json()["error"]["fields"]
    assert "gpt-17" in r.json()["error"]["message"]


def test_it_refuses_a_dataset_version_that_is_not_ready(api, tenant, outsider):
    queued = dataset_create(
        organization=tenant.organization, user=tenant.user, name="later", upload=zip_upload()
    )
    r = create(api, queued)
    assert r.status_code == 400
    error = r.json()["error"]
    assert "dataset_version" in error["fields"]
    assert "not ready" in error["message"]
    assert "queued" in error["message"]
    assert_nothing_configured()


def test_it_refuses_a_dataset_version_with_one_class(api, tenant):
    upload = zip_upload(classes=("circle",), per_class=4)
    version = dataset_create(
        organization=tenant.organization, user=tenant.user, name="one", upload=upload
    )
    version = dataset_version_ingest(version_id=version.pk)
    assert version.is_ready

    r = create(api, version)
    assert r.status_code == 400
    assert "at least 2" in r.json()["error"]["message"]
    assert_nothing_configured()


def test_it_refuses_another_organizations_dataset_version_without_telling(
    client, ready_version, outsider
):
    r = client.post(
        MODELS,
        {"name": "stolen", "template": "leptonnet", "dataset_version": str(ready_version.pk)},
        content_type="application/json",
        **outsider.auth,
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert "dataset_version" in error["fields"]
    assert f"No object with id {ready_version.pk} exists in your organization" in error["message"]
    assert_nothing_configured()


@pytest.mark.parametrize("bad_id", ["not-a-uuid", 42, "", None, ["x"], {"id": 1}])
def test_it_refuses_a_dataset_version_id_that_is_no_uuid(api, ready_version, bad_id):
    r = api.post(MODELS, {"name": "m", "template": "leptonnet", "dataset_version": bad_id})
    assert r.status_code == 400, r.content
    assert "dataset_version" in r.json()["error"]["fields"]
    assert_nothing_configured()


def test_it_configures_a_model_and_queues_a_run(api, tenant, ready_version, outsider):
    r = create(api, ready_version, hyperparameters={"epochs": 4}, start_training=True)
    assert r.status_code == 201, r.content
    body = r.json()
    config = ModelConfig.all_tenants.get(pk=body["id"])
    assert config.organization == tenant.organization
    assert config.hyperparameters["epochs"] == 4
    assert config.hyperparameters["batch_size"] == 32  # the template's default
    assert body["hyperparameters"] == config.hyperparameters

    run = TrainingRun.all_tenants.get(pk=body["run"])
    assert run.model_config == config
    assert run.status == JobStatus.QUEUED
    assert run.total_epochs == 4
    assert run.hyperparameters == config.hyperparameters
    assert run.organization == tenant.organization


def test_it_configures_without_starting_a_run(api, ready_version):
    r = create(api, ready_version)
    assert r.status_code == 201
    assert "run" not in r.json()
    assert not TrainingRun.all_tenants.exists()


def start(api, version, **knobs) -> TrainingRun:
    hyperparameters = {"epochs": 1, "batch_size": 16} | knobs
    r = create(api, version, hyperparameters=hyperparameters, start_training=True)
    assert r.status_code == 201, r.content
    return TrainingRun.all_tenants.get(pk=r.json()["run"])


def test_it_trains_and_the_evaluation_matches_the_stored_model(api, ready_version, outsider):
    run = start(api, ready_version, epochs=5)

    run = training_run_execute(run_id=run.pk)

    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.progress == 1.0
    assert run.epoch == run.total_epochs == 5
    assert run.lease_expires_at is None
    assert run.device == "cpu"
    epochs = EpochMetric.all_tenants.filter(run=run).order_by("epoch")
    assert [m.epoch for m in epochs] == [1, 2, 3, 4, 5]
    assert all(m.train_loss > 0 and 0 <= m.train_accuracy <= 1 for m in epochs)
    assert all(m.val_accuracy is not None for m in epochs)

    model_version = ModelVersion.all_tenants.get(run=run)
    assert model_version.labels == ready_version.labels
    assert model_version.input_size == run.hyperparameters["input_size"]
    evaluation = model_version.evaluation

    # Recompute the evaluation from the stored model file and the stored test images.
    predictor = Predictor.load(Path(default_storage.path(model_version.file.name)), device="cpu")
    labels = predictor.labels
    assert labels == model_version.labels
    test_items = DatasetItem.all_tenants.filter(version=ready_version, split=Split.TEST)
    confusion = [[0] * len(labels) for _ in labels]
    for item in test_items:
        image = decode_image(item_read(item))
        predicted = predictor.predict(image, top_k=1)[0].label
        confusion[labels.index(item.label)][labels.index(predicted)] += 1
    correct = sum(confusion[i][i] for i in range(len(labels)))

    assert evaluation["count"] == len(test_items)
    assert evaluation["labels"] == labels
    assert evaluation["confusion"] == confusion
    assert evaluation["accuracy"] == correct / len(test_items) == model_version.accuracy
    for per_class in evaluation["per_class"]:
        assert per_class["support"] == ready_version.class_counts[per_class["label"]]["test"]
    assert f"{model_version.accuracy:.1%}" in run.message


def test_a_finished_run_is_not_trained_again(api, ready_version, outsider):
    run = start(api, ready_version)
    assert training_run_execute(run_id=run.pk).status == JobStatus.SUCCEEDED
    model_version = ModelVersion.all_tenants.get(run=run)

    assert training_run_execute(run_id=run.pk) is None

    assert list(ModelVersion.all_tenants.filter(model_config=run.model_config)) == [model_version]
    assert EpochMetric.all_tenants.filter(run=run).count() == 1
    assert TrainingRun.all_tenants.get(pk=run.pk).attempts == 1


def test_the_api_answers_the_evaluation_after_success(client, api, ready_version, outsider):
    run = start(api, ready_version)
    path = f"/api/v1/runs/{run.pk}/evaluation/"

    r = api.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_ready"
    assert "queued" in r.json()["error"]["message"]

    training_run_execute(run_id=run.pk)
    model_version = ModelVersion.all_tenants.get(run=run)

    r = api.get(path)
    assert r.status_code == 200
    assert r.json()["id"] == str(model_version.pk)
    assert r.json()["evaluation"] == model_version.evaluation
    assert r.json()["accuracy"] == model_version.accuracy

    r = api.get(f"/api/v1/runs/{run.pk}/")
    assert r.json()["status"] == "succeeded"
    assert r.json()["model_version"] == str(model_version.pk)
    assert [e["epoch"] for e in r.json()["epochs"]] == [1]

    # The other organization sees neither the run nor its evaluation.
    for other in (path, f"/api/v1/runs/{run.pk}/", f"/api/v1/model-versions/{model_version.pk}/"):
        r = client.get(other, **outsider.auth)
        assert r.status_code == 404, other
        assert r.json()["error"]["code"] == "not_found"


def test_a_run_with_an_unreadable_image_fails_naming_the_file(api, ready_version, outsider):
    run = start(api, ready_version)
    item = DatasetItem.all_tenants.filter(version=ready_version, split=Split.TRAIN).first()
    # Its bytes in the pack it shares with other images are overwritten, length kept.
    with open(default_storage.path(item.file.name), "r+b") as pack:
        pack.seek(item.file_offset)
        pack.write(b"no longer a png".ljust(item.file_length, b"\0"))

    run = training_run_execute(run_id=run.pk)

    assert run.status == JobStatus.FAILED
    assert item.original_name in run.message
    assert "not a readable image" in run.message
    assert run.lease_expires_at is None
    assert not ModelVersion.all_tenants.filter(run=run).exists()
    r = api.get(f"/api/v1/runs/{run.pk}/evaluation/")
    assert r.status_code == 404
    assert "failed" in r.json()["error"]["message"]
