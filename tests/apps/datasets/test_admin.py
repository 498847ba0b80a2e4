"""Datasets in the admin: versions (ingestion jobs) and items are read, never edited; a dataset
is deleted through apps.datasets.deletion, with its files, and refused mid-ingestion."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.admin.models import DELETION, LogEntry

from apps.audit.models import AuditEvent
from apps.core.jobs import JobStatus
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion
from tests.support.admin import STORED_BYTES, admin_rows, admin_url, platform_admin


@pytest.fixture
def staff(client, db):
    client.force_login(platform_admin())
    return client


def org_files(organization_id) -> set[str]:
    folder = Path(settings.MEDIA_ROOT, f"orgs/{organization_id}")
    return {str(p) for p in folder.rglob("*") if p.is_file()}


def test_it_shows_sizes_and_progress_in_readable_units(staff, tenant, outsider):
    rows = admin_rows(tenant)
    admin_rows(outsider)
    listing = staff.get(admin_url(DatasetVersion)).content.decode()
    assert "1.5 MB" in listing and "2 KB" in listing and "100.0 %" in listing
    assert str(STORED_BYTES) not in listing
    page = staff.get(admin_url(DatasetVersion, "change", rows.version.pk)).content.decode()
    assert "1.5 MB" in page and "100.0 %" in page and "1 h 3 min" in page  # run time
    items = staff.get(admin_url(DatasetItem)).content.decode()
    assert "2 KB" in items
    assert "1 image" in listing
    DatasetVersion.all_tenants.filter(pk=rows.version.pk).update(item_count=0, row_count=120)
    assert "120 rows" in staff.get(admin_url(DatasetVersion)).content.decode()


def test_a_post_cannot_change_an_ingestion(staff, tenant):
    version = admin_rows(tenant).version
    DatasetVersion.all_tenants.filter(pk=version.pk).update(
        status=JobStatus.RUNNING, progress=0.4, attempts=1
    )
    response = staff.post(
        admin_url(DatasetVersion, "change", version.pk),
        {"status": JobStatus.QUEUED, "progress": "0", "attempts": "0", "lease_expires_at": ""},
    )
    assert response.status_code == 403
    version.refresh_from_db()
    assert (version.status, version.progress, version.attempts) == (JobStatus.RUNNING, 0.4, 1)


def test_it_deletes_a_dataset_with_its_files_through_the_service(
    staff, tenant, ready_version, django_capture_on_commit_callbacks
):
    organization = tenant.organization
    assert org_files(organization.pk)
    url = admin_url(Dataset, "delete", ready_version.dataset_id)
    confirm = staff.get(url).content.decode()
    assert "Are you sure" in confirm and "permission to delete" not in confirm

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(url, {"post": "yes"}, follow=True)

    assert response.redirect_chain[-1][0] == admin_url(Dataset)
    assert "Deleted &#x27;shapes&#x27; (1 version)" in response.content.decode()
    assert not DatasetVersion.all_tenants.filter(organization=organization).exists()
    assert org_files(organization.pk) == set()
    event = AuditEvent.all_tenants.get(organization=organization, action="dataset.delete")
    assert event.actor.email == "root@platform.example"
    assert LogEntry.objects.get(action_flag=DELETION).object_repr == "shapes"


def test_it_refuses_to_delete_a_dataset_being_ingested(staff, tenant, ready_version):
    DatasetVersion.all_tenants.filter(pk=ready_version.pk).update(status=JobStatus.RUNNING)

    response = staff.post(
        admin_url(Dataset, "delete", ready_version.dataset_id), {"post": "yes"}, follow=True
    )

    assert response.redirect_chain[-1][0] == admin_url(Dataset, "change", ready_version.dataset_id)
    assert "is still being ingested" in response.content.decode()
    assert DatasetVersion.all_tenants.filter(pk=ready_version.pk).exists()
    assert not AuditEvent.all_tenants.filter(action="dataset.delete").exists()
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_it_offers_no_bulk_delete_that_would_skip_the_service(staff, tenant):
    admin_rows(tenant)
    assert "delete_selected" not in staff.get(admin_url(Dataset)).content.decode()


def test_staff_rename_a_dataset(staff, tenant):
    dataset = admin_rows(tenant).dataset
    response = staff.post(
        admin_url(Dataset, "change", dataset.pk), {"name": "Renamed", "description": "why"}
    )
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert (dataset.name, dataset.description) == ("Renamed", "why")
