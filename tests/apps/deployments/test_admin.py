"""Endpoints in the admin: staff switch one off, or delete it through the service (audited)."""

import pytest

from apps.audit.models import AuditEvent
from apps.deployments.models import Endpoint
from tests.support.admin import admin_rows, admin_url, platform_admin


@pytest.fixture
def staff(client, db):
    client.force_login(platform_admin())
    return client


def test_staff_switch_an_endpoint_off(staff, tenant):
    endpoint = admin_rows(tenant).endpoint
    response = staff.post(admin_url(Endpoint, "change", endpoint.pk), {"name": endpoint.name})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert staff.get(admin_url(Endpoint, "add")).status_code == 403


def test_staff_delete_an_endpoint_through_the_service(staff, tenant, outsider):
    endpoint = admin_rows(tenant).endpoint
    admin_rows(outsider)

    response = staff.post(admin_url(Endpoint, "delete", endpoint.pk), {"post": "yes"}, follow=True)

    assert "calls to it now answer 404" in response.content.decode()
    assert list(Endpoint.all_tenants.values_list("organization__name", flat=True)) == ["Rival Labs"]
    event = AuditEvent.objects.for_organization(tenant.organization).get(action="endpoint.delete")
    assert event.actor.email == "root@platform.example"
