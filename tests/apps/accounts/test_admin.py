"""API keys in the admin: staff rename or revoke one (audited); none is made there."""

import pytest

from apps.accounts.models import ApiKey, User
from apps.audit.models import AuditEvent
from tests.support.admin import admin_url, platform_admin


@pytest.fixture
def staff(client, db):
    client.force_login(platform_admin())
    return client


def test_staff_revoke_a_key_through_the_service(staff, tenant, outsider, api):
    response = staff.post(
        admin_url(ApiKey),
        {"action": "revoke", "_selected_action": [tenant.api_key.pk]},
        follow=True,
    )
    assert "Revoked 1 key." in response.content.decode()
    tenant.api_key.refresh_from_db()
    outsider.api_key.refresh_from_db()
    assert tenant.api_key.revoked_at is not None and outsider.api_key.revoked_at is None
    event = AuditEvent.objects.for_organization(tenant.organization).get(action="api_key.revoke")
    assert event.actor.email == "root@platform.example"
    assert api.get("/api/v1/datasets/").status_code == 401


def test_staff_rename_a_key_but_cannot_make_one(staff, tenant):
    key = tenant.api_key
    response = staff.post(admin_url(ApiKey, "change", key.pk), {"name": "ci", "prefix": "x"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name == "ci" and key.prefix != "x"
    assert staff.get(admin_url(ApiKey, "add")).status_code == 403


def test_staff_delete_a_user_with_their_keys(staff, tenant):
    response = staff.post(admin_url(User, "delete", tenant.user.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not ApiKey.objects.for_organization(tenant.organization).exists()
