"""Deploying a model version and calling the prediction API, with one usage event per call."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test.client import MULTIPART_CONTENT

from apps.analytics.models import UsageEvent
from apps.core.jobs import JobStatus
from apps.datasets.models import Dataset, DatasetVersion
from apps.deployments.models import Endpoint
from apps.training.models import ModelConfig, ModelVersion, TrainingRun
from tests.conftest import as_file, png_bytes, trained_model_version
from tests.support.archives import pixel_bomb
from tests.support.shapes import SHAPE_CLASSES
from workers.ml.architectures import build_model
from workers.ml.checkpoint import ModelBundle, save_bundle
from workers.ml.images import decode_image
from workers.ml.predictor import Predictor

ENDPOINTS = "/api/v1/endpoints/"
LABELS = ["red circle", "green square", "blue triangle", "other", "unknown"]


def seeded_model_version(tenant, tmp_path: Path, labels: list[str] = LABELS) -> ModelVersion:
    """A model version whose file is a real bundle with seeded, untrained weights.

    Training is tested in tests/apps/training; here a model only needs to answer, and building
    one this way takes milliseconds.
    """
    torch.manual_seed(len(labels))
    model = build_model("leptonnet", num_classes=len(labels))
    path = tmp_path / "model.pt"
    save_bundle(
        ModelBundle(
            template="leptonnet", labels=labels, input_size=32, state_dict=model.state_dict()
        ),
        path,
    )
    org = tenant.organization
    dataset = Dataset.all_tenants.create(organization=org, name="made up")
    version = DatasetVersion.all_tenants.create(
        organization=org,
        dataset=dataset,
        number=1,
        status=JobStatus.SUCCEEDED,
        class_counts={label: {"total": 1} for label in labels},
    )
    config = ModelConfig.all_tenants.create(
        organization=org, name="seeded", template="leptonnet", dataset_version=version
    )
    run = TrainingRun.all_tenants.create(
        organization=org, model_config=config, status=JobStatus.SUCCEEDED
    )
    name = default_storage.save(
        f"orgs/{org.pk}/models/{config.pk}/v1-{uuid.uuid4().hex}.pt",
        ContentFile(path.read_bytes()),
    )
    return ModelVersion.all_tenants.create(
        organization=org,
        model_config=config,
        run=run,
        number=1,
        file=name,
        template="leptonnet",
        labels=labels,
        input_size=32,
    )


def deploy(api, model_version) -> str:
    r = api.post(ENDPOINTS, {"model_version": str(model_version.pk), "name": "shop"})
    assert r.status_code == 201, r.content
    return r.json()["predict_url"]


@pytest.fixture
def predict_url(api, tenant, outsider, tmp_path) -> str:
    return deploy(api, seeded_model_version(tenant, tmp_path))


def events() -> list[UsageEvent]:
    """Prediction events (training runs record their own kind)."""
    return list(UsageEvent.all_tenants.filter(kind=UsageEvent.Kind.PREDICT).order_by("created_at"))


def assert_one_event(tenant, url: str, status: int) -> None:
    recorded = events()
    assert len(recorded) == 1, recorded
    event = recorded[0]
    assert event.status_code == status
    assert event.organization == tenant.organization
    assert str(event.endpoint_id) in url
    assert event.api_key == tenant.api_key
    assert event.latency_ms > 0
    assert event.kind == UsageEvent.Kind.PREDICT


def test_it_predicts_with_a_really_trained_model(api, tenant, ready_version, outsider):
    model_version = trained_model_version(tenant, ready_version, epochs=1)
    url = deploy(api, model_version)
    image = png_bytes("triangle", seed=3)

    r = api.post(url, {"image": as_file(image)})

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["model_version"] == str(model_version.pk)
    assert url == f"{ENDPOINTS}{body['endpoint']}/predict/"
    predictions = body["predictions"]
    assert sorted(p["label"] for p in predictions) == sorted(SHAPE_CLASSES)
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    # The same answer as the stored model gives on its own.
    predictor = Predictor.load(Path(default_storage.path(model_version.file.name)), device="cpu")
    expected = predictor.predict(decode_image(image), top_k=3)
    assert [(p.label, pytest.approx(p.probability)) for p in expected] == [
        (p["label"], p["probability"]) for p in predictions
    ]
    assert body["latency_ms"] > 0
    assert_one_event(tenant, url, 200)


def test_it_answers_the_top_three_by_default_with_sane_probabilities(api, tenant, predict_url):
    r = api.post(predict_url, {"image": as_file(png_bytes())})
    assert r.status_code == 200
    predictions = r.json()["predictions"]
    assert len(predictions) == 3
    assert len({p["label"] for p in predictions}) == 3
    assert {p["label"] for p in predictions} <= set(LABELS)
    probabilities = [p["probability"] for p in predictions]
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) <= 1.0 + 1e-6
    assert_one_event(tenant, predict_url, 200)


@pytest.mark.parametrize("top_k", [1, 3, len(LABELS), 20])
def test_it_honours_top_k(api, predict_url, top_k):
    everything = api.post(f"{predict_url}?top_k=20", {"image": as_file(png_bytes())}).json()
    assert len(everything["predictions"]) == len(LABELS)

    by_query = api.post(f"{predict_url}?top_k={top_k}", {"image": as_file(png_bytes())})
    by_form = api.post(predict_url, {"image": as_file(png_bytes()), "top_k": str(top_k)})
    for r in (by_query, by_form):
        assert r.status_code == 200
        assert r.json()["predictions"] == everything["predictions"][: min(top_k, len(LABELS))]


@pytest.mark.parametrize("top_k", ["0", "-1", "21", "99", "x", "1.5"])
def test_it_refuses_a_bad_top_k(api, tenant, predict_url, top_k):
    r = api.post(f"{predict_url}?top_k={top_k}", {"image": as_file(png_bytes())})
    assert r.status_code == 400
    error = r.json()["error"]
    assert "top_k" in error["fields"]
    assert error["message"].startswith("top_k must be")
    assert "20" in error["message"]
    assert_one_event(tenant, predict_url, 400)


def test_it_takes_the_image_as_the_raw_body(api, tenant, predict_url):
    multipart = api.post(predict_url, {"image": as_file(png_bytes())})
    r = api.post(predict_url, png_bytes(), content_type="image/png")
    assert r.status_code == 200, r.content
    assert r.json()["predictions"] == multipart.json()["predictions"]
    assert UsageEvent.all_tenants.filter(status_code=200).count() == 2


def test_it_refuses_a_call_without_an_image(api, tenant, predict_url):
    r = api.post(predict_url, {"top_k": "2"}, content_type=MULTIPART_CONTENT)
    assert r.status_code == 400
    error = r.json()["error"]
    assert "image" in error["fields"]
    assert "'image'" in error["message"]
    assert_one_event(tenant, predict_url, 400)


def test_it_refuses_an_empty_raw_body(api, tenant, predict_url):
    r = api.post(predict_url, b"", content_type="image/png")
    assert r.status_code == 400
    assert "'image'" in r.json()["error"]["message"]
    assert "raw request body" in r.json()["error"]["message"]
    assert_one_event(tenant, predict_url, 400)


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"GIF89a but not really", "not an image the model can read"),
        (b"\x00" * 512, "not an image the model can read"),
        (png_bytes()[:60], "damaged or truncated"),
    ],
)
def test_it_refuses_bytes_that_are_no_image(api, tenant, predict_url, data, phrase):
    r = api.post(predict_url, {"image": as_file(data, "photo.png")})
    assert r.status_code == 400
    error = r.json()["error"]
    assert "image" in error["fields"]
    assert phrase in error["message"]
    assert_one_event(tenant, predict_url, 400)


@pytest.mark.parametrize("how", ["multipart", "raw"])
def test_it_refuses_an_image_over_the_limit(api, tenant, predict_url, settings, how):
    settings.LEPTON_MAX_PREDICT_BYTES = 1024 * 1024
    data = png_bytes() + b"\x00" * settings.LEPTON_MAX_PREDICT_BYTES
    if how == "raw":
        r = api.post(predict_url, data, content_type="image/png")
    else:
        r = api.post(predict_url, {"image": as_file(data)})
    assert r.status_code == 413
    error = r.json()["error"]
    assert error["code"] == "too_large"
    assert "larger than 1 MB" in error["message"]
    assert_one_event(tenant, predict_url, 413)


def test_it_refuses_json_saying_how_to_send_the_image(api, tenant, predict_url):
    r = api.post(predict_url, {"image": "aGVsbG8="})  # JSON rows are for regression endpoints
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "wrong_input"
    assert "application/json" in error["message"]
    assert "multipart form field 'image'" in error["message"]
    assert_one_event(tenant, predict_url, 400)


def test_it_records_an_unsupported_content_type_too(api, tenant, predict_url):
    r = api.post(predict_url, "aGVsbG8=", content_type="text/plain")
    assert r.status_code == 415
    assert "text/plain" in r.json()["error"]["message"]
    assert_one_event(tenant, predict_url, 415)


@pytest.mark.parametrize(
    ("data", "content_type", "phrase"),
    [
        ({"image": "aGVsbG8="}, MULTIPART_CONTENT, "holds text, not a file"),
        ("image=aGVsbG8%3D&top_k=2", "application/x-www-form-urlencoded", "holds text"),
        (b"--xx\r\nbroken", "multipart/form-data; boundary=xx", "'image'"),
        (b"abc", "multipart/form-data", "boundary"),
    ],
    ids=["text field", "url-encoded form", "broken multipart", "multipart without boundary"],
)
def test_it_refuses_odd_bodies_with_400(api, tenant, predict_url, data, content_type, phrase):
    r = api.post(predict_url, data, content_type=content_type)
    assert r.status_code == 400, r.content
    assert phrase in r.json()["error"]["message"]
    assert_one_event(tenant, predict_url, 400)


def test_it_refuses_a_paused_endpoint(api, tenant, predict_url):
    Endpoint.all_tenants.filter(organization=tenant.organization).update(is_active=False)
    r = api.post(predict_url, {"image": as_file(png_bytes())})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "endpoint_inactive"
    assert_one_event(tenant, predict_url, 409)


def test_the_outsider_cannot_call_the_endpoint_and_leaves_no_usage(
    client, tenant, outsider, predict_url
):
    r = client.post(predict_url, {"image": as_file(png_bytes())}, **outsider.auth)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = client.post(predict_url, png_bytes(), content_type="image/png", **outsider.auth)
    assert r.status_code == 404
    assert events() == []


def test_an_anonymous_call_is_refused_and_leaves_no_usage(client, predict_url):
    r = client.post(predict_url, {"image": as_file(png_bytes())})
    assert r.status_code == 401
    assert events() == []


def test_it_refuses_to_deploy_another_organizations_model_version(
    client, tenant, outsider, tmp_path
):
    theirs = seeded_model_version(tenant, tmp_path)
    r = client.post(
        ENDPOINTS,
        {"model_version": str(theirs.pk)},
        content_type="application/json",
        **outsider.auth,
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert "model_version" in error["fields"]
    assert f"No object with id {theirs.pk} exists in your organization" in error["message"]
    assert not Endpoint.all_tenants.exists()


@pytest.mark.parametrize("bad_id", ["latest", 7, None])
def test_it_refuses_to_deploy_a_model_version_id_that_is_no_uuid(api, bad_id):
    r = api.post(ENDPOINTS, {"model_version": bad_id})
    assert r.status_code == 400
    assert "model_version" in r.json()["error"]["fields"]
    assert not Endpoint.all_tenants.exists()


def test_the_endpoint_names_the_model_by_default(api, tenant, tmp_path):
    model_version = seeded_model_version(tenant, tmp_path)
    r = api.post(ENDPOINTS, {"model_version": str(model_version.pk)})
    assert r.status_code == 201
    assert r.json()["name"] == f"{model_version.model_config.name} v{model_version.number}"
    assert r.json()["is_active"] is True


def test_it_refuses_an_image_over_the_pixel_limit_before_decoding_it(api, tenant, predict_url):
    # A few hundred bytes whose header declares 400 megapixels: refused for the portal's own
    # limit (LEPTON_MAX_PREDICT_IMAGE_PIXELS, 16 megapixels), not Pillow's pixel-bomb guard.
    r = api.post(predict_url, {"image": as_file(pixel_bomb(20_000, 20_000), "huge.png")})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "image_too_large"
    assert "image" in error["fields"]
    assert "20000 x 20000 pixels" in error["message"]
    assert "at most 16,000,000 pixels" in error["message"]
    assert "Resize it to at most 4000 x 4000 pixels" in error["message"]
    assert_one_event(tenant, predict_url, 400)


def test_an_image_at_the_pixel_limit_is_still_answered(api, predict_url, settings):
    picture = png_bytes()
    width, height = decode_image(picture).size
    settings.LEPTON_MAX_PREDICT_IMAGE_PIXELS = width * height
    assert api.post(predict_url, {"image": as_file(picture)}).status_code == 200
    settings.LEPTON_MAX_PREDICT_IMAGE_PIXELS = width * height - 1
    r = api.post(predict_url, {"image": as_file(picture)})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "image_too_large"
