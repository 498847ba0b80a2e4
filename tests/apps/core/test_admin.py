"""Platform admins see every tenant's objects in the Django admin; nobody else gets in; rows that
the portal's services write are not made or edited by hand."""

import pytest
from django.contrib import admin

from apps.analytics.models import UsageEvent
from apps.audit.models import AuditEvent
from apps.core.admin import JobAdmin
from apps.core.job_registry import job_kinds
from apps.core.models import TenantModel
from apps.core.scoping import get_active_organization
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.training.models import ModelVersion, TrainingRun
from tests.support.admin import admin_rows, admin_url, platform_admin

SERVICE_MADE = [DatasetVersion, DatasetItem, TrainingRun, ModelVersion, UsageEvent, AuditEvent]


@pytest.fixture
def staff(db):
    return platform_admin()


@pytest.fixture
def two_tenants(tenant, outsider):
    return admin_rows(tenant), admin_rows(outsider)


def test_it_lists_every_tenants_objects_for_a_platform_admin(
    client, staff, tenant, outsider, ready_version
):
    client.force_login(staff)
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = client.get(url)
        assert response.status_code == 200, url
    organizations = client.get("/admin/tenants/organization/").content.decode()
    assert "Acme Vision" in organizations and "Rival Labs" in organizations
    memberships = client.get("/admin/tenants/membership/").content.decode()
    assert "owner@acme.example" in memberships and "owner@rival.example" in memberships
    assert "shapes" in client.get("/admin/datasets/dataset/").content.decode()
    change = client.get(f"/admin/datasets/datasetversion/{ready_version.pk}/change/")
    assert change.status_code == 200
    assert get_active_organization() is None


def test_it_renders_every_list_and_row_of_both_organizations(client, staff, two_tenants):
    client.force_login(staff)
    for model in admin.site._registry:
        listing = client.get(admin_url(model))
        assert listing.status_code == 200, model
        rows = model._base_manager.all()  # every tenant's rows, as the admin sees them
        if issubclass(model, TenantModel):
            names = set(rows.values_list("organization__name", flat=True))
            assert {"Acme Vision", "Rival Labs"} <= names, model
            for name in ("Acme Vision", "Rival Labs"):
                assert name in listing.content.decode(), model
        for row in rows:
            page = client.get(admin_url(model, "change", row.pk))
            assert page.status_code == 200, (model, row)
    assert get_active_organization() is None


def test_it_offers_no_add_page_for_rows_the_services_make(client, staff, two_tenants):
    client.force_login(staff)
    for model in SERVICE_MADE:
        assert client.get(admin_url(model, "add")).status_code == 403, model
        listing = client.get(admin_url(model)).content.decode()
        assert admin_url(model, "add") not in listing, model


def test_it_refuses_to_edit_or_delete_rows_the_services_write(client, staff, two_tenants):
    client.force_login(staff)
    for model in SERVICE_MADE:
        row = model._base_manager.first()
        page = client.get(admin_url(model, "change", row.pk)).content.decode()
        assert 'name="_save"' not in page, model
        assert client.post(admin_url(model, "change", row.pk), {}).status_code == 403, model
        assert client.post(admin_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
        assert model._base_manager.filter(pk=row.pk).exists(), model


def test_it_registers_every_tenant_model_in_the_admin():
    from django.apps import apps

    tenant_models = {m for m in apps.get_models() if issubclass(m, TenantModel)}
    missing = {m._meta.label for m in tenant_models} - {m._meta.label for m in admin.site._registry}
    assert missing <= {"training.EpochMetric"}, missing  # shown inside its run's page


def test_it_keeps_customers_out_of_the_admin(client, tenant):
    client.force_login(tenant.user)
    response = client.get("/admin/tenants/organization/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_every_kind_of_job_has_a_view_only_admin_that_names_it(client, staff, two_tenants):
    client.force_login(staff)
    kinds = job_kinds()
    assert {kind.model for kind in kinds} >= {"datasets.DatasetVersion", "training.TrainingRun"}
    for kind in kinds:
        model_admin = admin.site._registry.get(kind.model_class)
        assert isinstance(model_admin, JobAdmin), kind.name
        row = kind.model_class._base_manager.first()
        page = client.get(admin_url(kind.model_class, "change", row.pk)).content.decode()
        assert kind.name in page and f"1 of {kind.max_attempts}" in page, kind.name
