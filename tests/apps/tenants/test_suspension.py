"""Suspending an organization: its pages, keys, session API calls and endpoints are refused with
the reason, its jobs are cancelled, and the outsider beside it carries on."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.core.jobs import JobStatus, ProgressReporter, job_claim
from apps.core.scoping import tenant_scope
from apps.datasets.ingest.run import IngestionStopped, ingest_images
from apps.datasets.ingest.storing import packs_folder
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.datasets.services import dataset_create
from apps.tenants.models import Organization
from apps.tenants.services import organization_resume, organization_suspend
from apps.training.models import TrainingRun
from apps.training.run_session import CancelCheck
from apps.training.services import model_config_create, training_run_start
from tests.apps.deployments.test_predict import deploy, seeded_model_version
from tests.conftest import PASSWORD, as_file, png_bytes, zip_upload

REASON = "Unpaid invoice 2026-11"


def _suspend(tenant, reason: str = REASON) -> None:
    organization_suspend(organization=tenant.organization, actor=None, reason=reason)


def _queued_run(tenant, ready_version) -> TrainingRun:
    config = model_config_create(
        organization=tenant.organization,
        user=tenant.user,
        name="shapes model",
        template="leptonnet",
        dataset_version=ready_version,
        hyperparameters={"epochs": 2},
    )
    return training_run_start(model_config=config, user=tenant.user)


def test_it_records_the_suspension_and_the_resumption(tenant, outsider):
    _suspend(tenant)
    organization = Organization.objects.get(pk=tenant.organization.pk)
    assert organization.is_suspended
    assert organization.suspension_reason == REASON
    assert not Organization.objects.get(pk=outsider.organization.pk).is_suspended
    assert organization_suspend(organization=organization, actor=None) == 0  # already
    assert organization_resume(organization=organization, actor=tenant.user)
    assert not organization_resume(organization=organization, actor=tenant.user)
    organization.refresh_from_db()
    assert organization.suspended_at is None and organization.suspension_reason == ""
    with tenant_scope(organization):
        actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "organization.suspend" in actions and "organization.resume" in actions


def test_it_refuses_the_pages_with_the_reason(client, tenant, outsider):
    _suspend(tenant)
    client.login(email=tenant.user.email, password=PASSWORD)
    response = client.get("/datasets/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Organization suspended" in page and REASON in page
    client.login(email=outsider.user.email, password=PASSWORD)
    assert client.get("/datasets/").status_code == 200


def test_it_refuses_api_keys_with_the_suspended_code(client, tenant, outsider):
    _suspend(tenant)
    response = client.get("/api/v1/datasets/", **tenant.auth)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "suspended"
    assert REASON in error["message"]
    assert client.get("/api/v1/datasets/", **outsider.auth).status_code == 200
    organization_resume(organization=tenant.organization, actor=None)
    assert client.get("/api/v1/datasets/", **tenant.auth).status_code == 200


def test_it_refuses_session_api_calls(client, tenant, outsider):
    _suspend(tenant)
    client.login(email=tenant.user.email, password=PASSWORD)
    response = client.get("/api/v1/datasets/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "suspended"
    client.login(email=outsider.user.email, password=PASSWORD)
    assert client.get("/api/v1/datasets/").status_code == 200


def test_it_refuses_predictions_on_its_endpoints(api, client, tenant, outsider, tmp_path):
    predict_url = deploy(api, seeded_model_version(tenant, tmp_path))
    _suspend(tenant)
    response = client.post(predict_url, {"image": _image_file()}, **tenant.auth)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "suspended"
    organization_resume(organization=tenant.organization, actor=None)
    assert client.post(predict_url, {"image": _image_file()}, **tenant.auth).status_code == 200


def _image_file():
    return as_file(png_bytes())


def test_it_cancels_queued_and_running_runs_and_leaves_the_outsiders(
    tenant, outsider, ready_version
):
    queued = _queued_run(tenant, ready_version)
    running = _queued_run(tenant, ready_version)
    job_claim(TrainingRun, running.pk)
    check = CancelCheck(running, interval=0)
    with tenant_scope(tenant.organization):  # as on the worker
        assert not check()
    other = dataset_create(
        organization=outsider.organization, user=outsider.user, name="theirs", upload=zip_upload()
    )
    _suspend(tenant)
    for run in (queued, running):
        run.refresh_from_db()
        assert run.status == JobStatus.CANCELLED
        assert "suspended" in run.message
    with tenant_scope(tenant.organization):
        assert check()  # the worker stops before its next step
    other.refresh_from_db()
    assert other.status == JobStatus.QUEUED
    organization_resume(organization=tenant.organization, actor=None)
    queued.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED  # the customer starts it again


def test_a_running_ingestion_stops_and_keeps_nothing(tenant, outsider, settings):
    settings.LEPTON_PROGRESS_INTERVAL = 0
    version = dataset_create(
        organization=tenant.organization, user=tenant.user, name="shapes", upload=zip_upload()
    )
    claimed = job_claim(DatasetVersion, version.pk)
    assert claimed is not None
    _suspend(tenant)
    with tenant_scope(tenant.organization), pytest.raises(IngestionStopped):
        ingest_images(claimed)
    claimed.refresh_from_db()
    assert claimed.status == JobStatus.CANCELLED
    assert "suspended" in claimed.message
    assert not DatasetItem.objects.for_organization(tenant.organization).exists()
    folder = packs_folder(tenant.organization.pk, version.pk)
    assert not default_storage.exists(folder) or default_storage.listdir(folder) == ([], [])


def test_a_progress_write_after_the_cancellation_changes_nothing(tenant):
    version = dataset_create(
        organization=tenant.organization, user=tenant.user, name="shapes", upload=zip_upload()
    )
    claimed = job_claim(DatasetVersion, version.pk)
    _suspend(tenant)
    reporter = ProgressReporter(claimed, interval=0)
    reporter.report(progress=0.5)
    assert reporter.last_rows == 0


def test_the_command_suspends_and_resumes_by_slug(tenant, outsider, capsys):
    slug = tenant.organization.slug
    call_command("organization_suspend", slug, "--reason", REASON)
    assert Organization.objects.get(slug=slug).suspension_reason == REASON
    assert not Organization.objects.get(pk=outsider.organization.pk).is_suspended
    call_command("organization_suspend", slug, "--resume")
    assert not Organization.objects.get(slug=slug).is_suspended
    assert "Resumed" in capsys.readouterr().out
