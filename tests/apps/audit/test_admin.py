"""Audit events are read in the admin, never made, edited or removed there."""

import pytest

from apps.audit.models import AuditEvent
from tests.support.admin import admin_url, platform_admin


@pytest.fixture
def staff(client, db):
    client.force_login(platform_admin())
    return client


def test_it_shows_every_organizations_audit_trail(staff, tenant, outsider):
    listing = staff.get(admin_url(AuditEvent)).content.decode()
    assert "Acme Vision" in listing and "Rival Labs" in listing and "api_key.create" in listing


def test_it_keeps_the_audit_trail_as_it_was_written(staff, tenant):
    event = AuditEvent.objects.for_organization(tenant.organization).get(action="api_key.create")
    assert staff.get(admin_url(AuditEvent, "add")).status_code == 403
    change = staff.post(admin_url(AuditEvent, "change", event.pk), {"action": "nothing"})
    delete = staff.post(admin_url(AuditEvent, "delete", event.pk), {"post": "yes"})
    assert (change.status_code, delete.status_code) == (403, 403)
    event.refresh_from_db()
    assert event.action == "api_key.create"
