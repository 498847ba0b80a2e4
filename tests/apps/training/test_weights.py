"""Pretrained weights a customer uploads: checked to fit before they are kept, read without
running any code inside them, and used by the model's runs."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from apps.core.jobs import JobStatus
from apps.training.execution import training_run_execute
from apps.training.models import ModelConfig, TrainingRun
from apps.training.services import model_config_create
from workers.ml.architectures import build_model

MARKER = Path("/tmp/lepton-weights-pwned")


def weights_file(data: bytes, name: str = "weights.pth") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture
def config(tenant, ready_version):
    return model_config_create(
        organization=tenant.organization,
        user=tenant.user,
        name="fine-tuned",
        template="leptonnet",
        dataset_version=ready_version,
        hyperparameters={"epochs": 1, "batch_size": 16},
    )


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def multipart_put(client, tenant, config, data: bytes, name: str = "weights.pth"):
    from django.test.client import encode_multipart

    body = encode_multipart("lepton-boundary", {"file": weights_file(data, name)})
    return client.put(
        f"/api/v1/models/{config.pk}/weights/",
        body,
        content_type="multipart/form-data; boundary=lepton-boundary",
        **tenant.auth,
    )


def test_it_keeps_fitting_weights_and_the_run_starts_from_them(client, tenant, config):
    donor = build_model("leptonnet", num_classes=7)  # another head: it is not taken over
    response = multipart_put(client, tenant, config, saved(donor.state_dict()), "donor.pth")
    assert response.status_code == 200, response.content
    assert response.json()["pretrained_weights_name"] == "donor.pth"
    config.refresh_from_db()
    assert config.pretrained_weights.name.startswith(f"orgs/{tenant.organization.pk}/weights/")

    from apps.training.services import training_run_start

    run = training_run_execute(run_id=training_run_start(model_config=config, user=tenant.user).pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert "Starting from the uploaded weights donor.pth" in run.log


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", "is empty"),
        (b"\x00\x01 not a torch file at all", "not a readable weights file"),
        (pickle.dumps(_Exploit()), "not a readable weights file"),
        (saved(_Exploit()), "not a readable weights file"),
        (saved({"layer": [1, 2, 3]}), "no state dict"),
        (saved(build_model("resnet18", num_classes=3).state_dict()), "does not fit"),
        (saved({"stem.0.weight": torch.zeros(1)}), "does not fit"),
    ],
    ids=["empty", "garbage", "pickle-exploit", "torch-exploit", "no-tensors", "other", "partial"],
)
def test_it_refuses_bad_or_malicious_weights_and_keeps_what_it_had(
    client, tenant, config, data, expected
):
    MARKER.unlink(missing_ok=True)
    good = multipart_put(
        client, tenant, config, saved(build_model("leptonnet", num_classes=3).state_dict())
    )
    assert good.status_code == 200
    config.refresh_from_db()
    before = config.pretrained_weights.name

    response = multipart_put(client, tenant, config, data, "evil.pth")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert expected in error["message"] and "file" in error["fields"]
    assert not MARKER.exists()  # nothing in the file ran
    config.refresh_from_db()
    assert config.pretrained_weights.name == before  # the earlier weights are still there
    assert config.pretrained_weights.storage.exists(before)


def test_it_refuses_weights_over_the_size_limit(client, tenant, config):
    with override_settings(LEPTON_MAX_WEIGHTS_BYTES=1000):
        response = multipart_put(client, tenant, config, b"x" * 1001)
    assert response.status_code == 413
    assert "limited to" in response.json()["error"]["message"]


def test_it_refuses_weights_for_a_table_template_and_a_missing_file(client, tenant, config):
    ModelConfig.all_tenants.filter(pk=config.pk).update(template="linear")
    response = multipart_put(client, tenant, config, b"anything")
    assert response.status_code == 400
    assert "only apply to image templates" in response.json()["error"]["message"]
    missing = client.put(
        f"/api/v1/models/{config.pk}/weights/",
        b"--b--\r\n",
        content_type="multipart/form-data; boundary=b",
        **tenant.auth,
    )
    assert missing.status_code == 400
    assert "'file'" in missing.json()["error"]["message"]


def test_another_organization_cannot_upload_weights_to_a_model(client, outsider, config):
    response = multipart_put(client, outsider, config, saved({}))
    assert response.status_code == 404
    config.refresh_from_db()
    assert not config.pretrained_weights


def test_the_form_takes_weights_and_refuses_misfits_without_keeping_the_model(
    client, tenant, ready_version
):
    client.force_login(tenant.user)
    form = {
        "template": "leptonnet",
        "name": "from my weights",
        "dataset_version": str(ready_version.pk),
    }
    misfit = saved(build_model("resnet18", num_classes=3).state_dict())
    refused = client.post("/models/new/", form | {"weights": weights_file(misfit, "r18.pth")})
    assert refused.status_code == 400
    assert "does not fit" in refused.content.decode()
    assert 'data-testid="field-error-file"' in refused.content.decode()
    assert not ModelConfig.all_tenants.filter(name="from my weights").exists()

    fitting = saved(build_model("leptonnet", num_classes=3).state_dict())
    accepted = client.post("/models/new/", form | {"weights": weights_file(fitting, "mine.pth")})
    assert accepted.status_code == 302, accepted.content.decode()[:2000]
    config = ModelConfig.all_tenants.get(name="from my weights")
    assert config.pretrained_weights_name == "mine.pth"
    assert TrainingRun.all_tenants.filter(model_config=config).count() == 1
