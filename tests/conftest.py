"""Fixtures shared by the whole suite.

Every fixture set has an outsider: organization B ("outsider") exists beside organization A in
every test that uses `org`, so a query that forgets the tenant shows up.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.support.mail import mail_folder  # noqa: F401  (a fixture: importing registers it)
from tests.support.shapes import make_class_zip

PASSWORD = "Corr3ct-horse-battery"


@dataclass
class Tenant:
    """A signed-up organization with its owner and an API key."""

    user: Any
    organization: Any
    api_key: Any
    raw_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.raw_key}"}


def make_tenant(email: str, organization_name: str) -> Tenant:
    from apps.accounts.services import api_key_create, user_signup

    user, organization = user_signup(
        email=email, password=PASSWORD, organization_name=organization_name
    )
    key, raw = api_key_create(organization=organization, user=user, name="tests")
    return Tenant(user=user, organization=organization, api_key=key, raw_key=raw)


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant("owner@acme.example", "Acme Vision")


@pytest.fixture
def outsider(db) -> Tenant:
    return make_tenant("owner@rival.example", "Rival Labs")


@pytest.fixture
def api(client, tenant):
    """Django's test client, authenticated with `tenant`'s API key."""

    class ApiClient:
        def __init__(self, key_headers: dict[str, str]) -> None:
            self.headers = key_headers

        def get(self, path: str, **kw: Any):
            return client.get(path, **self.headers, **kw)

        def post(self, path: str, data: Any = None, **kw: Any):
            kw.setdefault("content_type", "application/json") if not _multipart(data) else None
            return client.post(path, data, **self.headers, **kw)

        def delete(self, path: str, **kw: Any):
            return client.delete(path, **self.headers, **kw)

    return ApiClient(tenant.auth)


def _multipart(data: Any) -> bool:
    return isinstance(data, dict) and any(
        hasattr(v, "read") or isinstance(v, SimpleUploadedFile) for v in data.values()
    )


def zip_upload(data: bytes | None = None, name: str = "shapes.zip", **kwargs: Any):
    """An uploaded file holding a generated zip of class folders (or the given bytes)."""
    payload = data if data is not None else make_class_zip(**({"per_class": 12} | kwargs))
    return SimpleUploadedFile(name, payload, content_type="application/zip")


@pytest.fixture
def ready_version(tenant):
    """A dataset version of generated shapes (12 per class), ingested for real."""
    from apps.datasets.services import dataset_create, dataset_version_ingest

    version = dataset_create(
        organization=tenant.organization, user=tenant.user, name="shapes", upload=zip_upload()
    )
    return dataset_version_ingest(version_id=version.pk)


def trained_model_version(tenant: Tenant, version: Any, **knobs: Any):
    """Configure and train a LeptonNet on `version` for real (a few seconds on the CPU)."""
    from apps.core.scoping import tenant_scope
    from apps.training.execution import training_run_execute
    from apps.training.models import ModelVersion
    from apps.training.services import model_config_create, training_run_start

    config = model_config_create(
        organization=tenant.organization,
        user=tenant.user,
        name="shapes model",
        template="leptonnet",
        dataset_version=version,
        hyperparameters={"epochs": 3, "batch_size": 16} | knobs,
    )
    run = training_run_start(model_config=config, user=tenant.user)
    run = training_run_execute(run_id=run.pk)
    with tenant_scope(tenant.organization):
        return ModelVersion.objects.get(run=run)


def png_bytes(label: str = "circle", seed: int = 7) -> bytes:
    import numpy as np

    from tests.support.shapes import image_bytes, make_shape_image

    return image_bytes(make_shape_image(label, np.random.default_rng(seed)))


def as_file(data: bytes, name: str = "image.png") -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle
