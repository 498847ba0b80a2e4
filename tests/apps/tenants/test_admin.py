"""Staff see what an organization uses, deactivate, suspend and resume it, and change roles.

Its plan and quotas (the storage quota typed as a size among them) are tested with the platform
console, in tests/apps/quotas/test_console.py."""

import pytest
from django.contrib import admin

from apps.tenants.models import Membership, Organization, Role
from tests.support.admin import admin_rows, admin_url, platform_admin


@pytest.fixture
def staff(client, db):
    client.force_login(platform_admin())
    return client


def _form(organization, **changes):
    data = {
        "name": organization.name,
        "slug": organization.slug,
        "region": organization.region,
        "is_active": "on",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "quota-TOTAL_FORMS": "0",
        "quota-INITIAL_FORMS": "0",
    }
    return data | changes


def test_it_lists_quotas_and_storage_used_in_readable_units(staff, tenant, outsider):
    admin_rows(tenant)
    listing = staff.get(admin_url(Organization)).content.decode()
    assert "5 GB" in listing  # the default quota, 5368709120 bytes
    assert "1.5 MB" in listing  # 2 KB uploaded + 1.5 MB stored, rounded
    assert "5368709120" not in listing
    # the admin numbers columns after the action checkbox
    column = admin.site._registry[Organization].list_display.index("used") + 1
    most_used_first = staff.get(f"{admin_url(Organization)}?o=-{column}").content.decode()
    assert most_used_first.index("Acme Vision") < most_used_first.index("Rival Labs")
    least_used_first = staff.get(f"{admin_url(Organization)}?o={column}").content.decode()
    assert least_used_first.index("Rival Labs") < least_used_first.index("Acme Vision")


def test_it_changes_the_region(staff, tenant):
    organization = tenant.organization
    response = staff.post(
        admin_url(Organization, "change", organization.pk), _form(organization, region="apac")
    )
    assert response.status_code == 302
    organization.refresh_from_db()
    assert organization.region == "apac"


def test_it_deactivates_an_organization_instead_of_deleting_it(staff, tenant):
    organization = tenant.organization
    url = admin_url(Organization, "delete", organization.pk)
    assert staff.post(url, {"post": "yes"}).status_code == 403
    staff.post(
        admin_url(Organization, "change", organization.pk), _form(organization, is_active="")
    )
    organization.refresh_from_db()
    assert organization.is_active is False


def test_it_changes_a_members_role(staff, tenant):
    membership = Membership.objects.get(organization=tenant.organization)
    response = staff.post(
        admin_url(Membership, "change", membership.pk),
        {"user": membership.user_id, "organization": membership.organization_id, "role": "admin"},
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_it_suspends_with_a_reason_and_resumes_from_the_list(staff, tenant, outsider):
    organization = tenant.organization
    chosen = {"action": "suspend", "_selected_action": [str(organization.pk)]}
    asked = staff.post(admin_url(Organization), chosen)
    assert asked.status_code == 200
    assert "Reason" in asked.content.decode()
    done = staff.post(admin_url(Organization), chosen | {"confirm": "1", "reason": "Abuse"})
    assert done.status_code == 302
    organization.refresh_from_db()
    assert organization.is_suspended and organization.suspension_reason == "Abuse"
    outsider.organization.refresh_from_db()
    assert not outsider.organization.is_suspended
    resumed = staff.post(admin_url(Organization), chosen | {"action": "resume"})
    assert resumed.status_code == 302
    organization.refresh_from_db()
    assert not organization.is_suspended
