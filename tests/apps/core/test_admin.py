"""Platform admins see every tenant's objects in the Django admin; nobody else gets in."""

import pytest
from django.contrib import admin

from apps.accounts.models import User
from apps.core.models import TenantModel
from apps.core.scoping import get_active_organization


@pytest.fixture
def staff(db):
    return User.objects.create_superuser(email="root@platform.example", password="x")


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


def test_it_registers_every_tenant_model_in_the_admin():
    from django.apps import apps

    tenant_models = {m for m in apps.get_models() if issubclass(m, TenantModel)}
    missing = {m._meta.label for m in tenant_models} - {m._meta.label for m in admin.site._registry}
    assert missing <= {"training.EpochMetric"}, missing


def test_it_keeps_customers_out_of_the_admin(client, tenant):
    client.force_login(tenant.user)
    response = client.get("/admin/tenants/organization/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
