"""Runs in the admin: read, never edited; cancelled through the service; numbers readable.
Models are deleted through apps.training.deletion."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.jobs import JobStatus
from apps.training.models import ModelConfig, ModelVersion, TrainingRun
from tests.support.admin import admin_rows, admin_url, platform_admin


@pytest.fixture
def staff(client, db):
    client.force_login(platform_admin())
    return client


def test_it_shows_accuracy_gpu_time_and_progress_in_readable_units(staff, tenant, outsider):
    rows = admin_rows(tenant)
    admin_rows(outsider)
    listing = staff.get(admin_url(TrainingRun)).content.decode()
    assert "96.7 %" in listing and "1 h 2 min" in listing and "100.0 %" in listing
    assert "0.9666" not in listing and "3725" not in listing
    page = staff.get(admin_url(TrainingRun, "change", rows.run.pk)).content.decode()
    assert "96.7 %" in page and "95.0 %" in page and "1 h 2 min" in page
    assert "<td>1</td><td>0.1200</td><td>-</td><td>-</td><td>96.7 %</td><td>1 min 1 s</td>" in page
    assert ">None<" not in page and "None</div>" not in page  # unknown values are a dash
    assert "<pre>20:00:01 Epoch 1/1: loss 0.1200\n" in page
    versions = staff.get(admin_url(ModelVersion)).content.decode()
    assert "96.7 %" in versions
    version = staff.get(admin_url(ModelVersion, "change", rows.model_version.pk)).content.decode()
    assert "96.7 %" in version and "/models/m.pt" in version
    assert 'href="/media/' not in version  # stored files are not served from storage


def test_it_sorts_runs_by_the_numbers_behind_the_readable_ones(staff, tenant, outsider):
    admin_rows(tenant)
    other = admin_rows(outsider).run
    TrainingRun.all_tenants.filter(pk=other.pk).update(val_accuracy=0.5, gpu_seconds=30)
    model_admin = admin.site._registry[TrainingRun]
    for column in ("val_acc", "gpu_time"):
        index = model_admin.list_display.index(column) + 1  # after the action checkbox
        page = staff.get(f"{admin_url(TrainingRun)}?o={index}").content.decode()
        assert page.index("Rival Labs model") < page.index("Acme Vision model"), column


def test_a_post_cannot_change_a_runs_state(staff, tenant):
    run = admin_rows(tenant).run
    TrainingRun.all_tenants.filter(pk=run.pk).update(
        status=JobStatus.RUNNING, progress=0.25, attempts=2
    )
    response = staff.post(
        admin_url(TrainingRun, "change", run.pk),
        {"status": JobStatus.SUCCEEDED, "progress": "1", "attempts": "0", "log": ""},
    )
    assert response.status_code == 403
    run.refresh_from_db()
    assert (run.status, run.progress, run.attempts) == (JobStatus.RUNNING, 0.25, 2)
    assert run.log.startswith("20:00:01")


def test_staff_cancel_a_running_run_through_the_service(staff, tenant, outsider):
    running = admin_rows(tenant).run
    finished = admin_rows(outsider).run
    TrainingRun.all_tenants.filter(pk=running.pk).update(status=JobStatus.RUNNING)

    response = staff.post(
        admin_url(TrainingRun),
        {"action": "cancel", "_selected_action": [running.pk, finished.pk]},
        follow=True,
    )

    page = response.content.decode()
    assert "Cancelled 1 run." in page and "The run already ended (succeeded)" in page
    running.refresh_from_db()
    assert running.status == JobStatus.CANCELLED
    assert running.message.startswith("Cancelled by root@platform.example")
    assert AuditEvent.all_tenants.get(action="training_run.cancel").organization == (
        tenant.organization
    )
    finished.refresh_from_db()
    assert finished.status == JobStatus.SUCCEEDED


def test_it_refuses_to_delete_a_deployed_model(staff, tenant):
    config = admin_rows(tenant).config
    url = admin_url(ModelConfig, "delete", config.pk)
    assert "Cannot delete" in staff.get(url).content.decode()  # its endpoint protects it

    response = staff.post(url, {"post": "yes"}, follow=True)

    assert "is deployed as the endpoint(s)" in response.content.decode()
    assert ModelConfig.all_tenants.filter(pk=config.pk).exists()


def test_it_deletes_a_model_with_its_runs_through_the_service(staff, tenant, outsider):
    rows = admin_rows(tenant)
    admin_rows(outsider)
    rows.endpoint.delete()

    response = staff.post(admin_url(ModelConfig, "delete", rows.config.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not TrainingRun.all_tenants.filter(organization=tenant.organization).exists()
    assert AuditEvent.all_tenants.filter(action="model.delete").count() == 1
    assert not ModelConfig.all_tenants.filter(organization=tenant.organization).exists()
    assert TrainingRun.all_tenants.filter(organization=outsider.organization).count() == 1


def test_staff_rename_a_model_but_not_its_template(staff, tenant):
    config = admin_rows(tenant).config
    response = staff.post(
        admin_url(ModelConfig, "change", config.pk), {"name": "Renamed", "template": "resnet18"}
    )
    assert response.status_code == 302
    config.refresh_from_db()
    assert (config.name, config.template) == ("Renamed", "leptonnet")


def test_a_running_runs_time_counts_until_now(staff, tenant):
    run = admin_rows(tenant).run
    started = timezone.now() - timedelta(minutes=7, seconds=3)
    TrainingRun.all_tenants.filter(pk=run.pk).update(
        status=JobStatus.RUNNING, started_at=started, finished_at=None
    )
    page = staff.get(admin_url(TrainingRun, "change", run.pk)).content.decode()
    assert "7 min 3 s" in page or "7 min 4 s" in page
