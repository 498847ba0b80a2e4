"""The platform console (the Organization admin): each organization's plan, members, storage
against its quota, this month's GPU time and predictions, last activity; changing the plan and
the quotas, each audited; one query for the list whatever its length; bad input refused."""

import pytest

from apps.audit.models import AuditEvent
from apps.quotas.models import OrganizationQuota, Plan
from apps.quotas.selectors import organization_limits
from apps.quotas.services import quota_override_set
from apps.tenants.models import Organization
from tests.conftest import make_tenant
from tests.support.admin import admin_rows, admin_url, platform_admin

GIB = 1024**3


@pytest.fixture
def staff(client, db):
    client.force_login(platform_admin())
    return client


def _result_list(html: str) -> str:
    return html[html.index('id="result_list"') :]


def test_it_lists_plan_members_storage_and_this_months_use(staff, tenant, outsider):
    admin_rows(tenant)  # a finished run of 1 h 2 min of GPU time and one prediction
    quota_override_set(organization=outsider.organization, storage_bytes=2 * GIB)
    listing = _result_list(staff.get(admin_url(Organization)).content.decode())
    acme = listing[listing.index("Acme Vision") : listing.index("</tr>", listing.index("Acme"))]
    assert "Team" in acme and "1.5 MB" in acme and "5 GB" in acme
    assert "1 h 2 min" in acme
    assert 'class="field-predictions_this_month">1<' in acme
    assert 'class="field-members">1<' in acme
    rival = listing[listing.index("Rival Labs") :]
    assert "Team, with its own limits" in rival and "2 GB" in rival


def test_the_list_costs_the_same_queries_for_two_or_ten_organizations(
    staff, tenant, outsider, django_assert_max_num_queries
):
    admin_rows(tenant)
    staff.get(admin_url(Organization))  # warm the session and the default plan
    with django_assert_max_num_queries(12) as few:
        staff.get(admin_url(Organization))
    for n in range(8):
        quota_override_set(
            organization=make_tenant(f"o{n}@many.example", f"Many {n}").organization,
            storage_bytes=n,
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = staff.get(admin_url(Organization))
    assert "Many 7" in response.content.decode()


def test_it_changes_the_plan_of_chosen_organizations_and_audits_it(staff, tenant, outsider):
    chosen = {"action": "change_plan", "_selected_action": [str(tenant.organization.pk)]}
    asked = staff.post(admin_url(Organization), chosen)
    assert asked.status_code == 200 and "Enterprise" in asked.content.decode()
    done = staff.post(admin_url(Organization), chosen | {"confirm": "1", "plan": "enterprise"})
    assert done.status_code == 302
    assert organization_limits(tenant.organization).plan_slug == "enterprise"
    assert organization_limits(outsider.organization).plan_slug == "team"
    event = AuditEvent.all_tenants.get(action="quota.plan")
    assert event.organization == tenant.organization
    assert event.data == {"before": "team", "after": "enterprise"}


def test_an_unknown_plan_is_refused(staff, tenant):
    chosen = {"action": "change_plan", "_selected_action": [str(tenant.organization.pk)]}
    page = staff.post(admin_url(Organization), chosen | {"confirm": "1", "plan": "gold"})
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    # NUL bytes are refused before any form sees them (apps.core.inputs), naming the field.
    nul = staff.post(admin_url(Organization), chosen | {"confirm": "1", "plan": "team\x00"})
    assert nul.status_code == 400 and "plan" in nul.content.decode()
    assert not OrganizationQuota.objects.exists()


def _change_form(organization, quota=None, **fields):
    data = {
        "name": organization.name,
        "slug": organization.slug,
        "region": organization.region,
        "is_active": "on",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "quota-TOTAL_FORMS": "1",
        "quota-INITIAL_FORMS": "1" if quota else "0",
        "quota-0-organization": str(organization.pk),
        "quota-0-plan": str((quota.plan if quota else Plan.objects.get(slug="team")).pk),
    }
    if quota:
        data["quota-0-id"] = str(quota.pk)
        for name in ("storage_bytes", "predictions_per_month"):
            value = getattr(quota, name)
            data[f"quota-0-{name}"] = "" if value is None else str(value)
    return data | {f"quota-0-{name}": value for name, value in fields.items()}


def test_it_sets_quotas_typed_as_people_write_them_and_audits_it(staff, tenant):
    organization = tenant.organization
    url = admin_url(Organization, "change", organization.pk)
    assert "Plan and quotas" in staff.get(url).content.decode()
    response = staff.post(
        url, _change_form(organization, storage_bytes="20 GB", predictions_per_month="500")
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    limits = organization_limits(organization)
    assert (limits.storage_bytes, limits.predictions_per_month) == (20 * GIB, 500)
    override = AuditEvent.all_tenants.get(action="quota.override")
    assert override.data["after"] == {"storage_bytes": 20 * GIB, "predictions_per_month": 500}
    assert override.actor.is_staff


def test_a_quota_that_is_not_a_round_size_is_kept_when_saved_unchanged(staff, tenant):
    organization = tenant.organization
    quota = quota_override_set(organization=organization, storage_bytes=5 * GIB + 1)
    url = admin_url(Organization, "change", organization.pk)
    assert 'value="5368709121"' in staff.get(url).content.decode()
    assert staff.post(url, _change_form(organization, quota)).status_code == 302
    assert organization_limits(organization).storage_bytes == 5 * GIB + 1
    assert AuditEvent.all_tenants.filter(action="quota.override").count() == 1  # ours only


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("storage_bytes", "lots", "is not a size: write a number of bytes"),
        ("storage_bytes", "-5 GB", "is not a size"),
        ("storage_bytes", "9" * 30, "Write a whole number from 0 to"),
        ("storage_bytes", "5\x00GB", "quota-0-storage_bytes"),
        ("predictions_per_month", "-1", "Write a whole number from 0 to"),
        ("predictions_per_month", "1e3", "Enter a whole number"),
        ("predictions_per_month", "1\x00", "quota-0-predictions_per_month"),
        ("plan", "not-a-uuid", "is not a valid UUID"),
    ],
)
def test_it_refuses_bad_quota_input_saying_why(staff, tenant, field, value, says):
    organization = tenant.organization
    response = staff.post(
        admin_url(Organization, "change", organization.pk),
        _change_form(organization, **{field: value}),
    )
    assert response.status_code == (400 if "\x00" in value else 200)
    assert says in response.content.decode().replace("&#x27;", "'")
    assert not OrganizationQuota.objects.exists()
    assert not AuditEvent.all_tenants.filter(action__startswith="quota.").exists()


def test_plans_are_listed_read_only(staff, tenant):
    page = staff.get(admin_url(Plan)).content.decode()
    assert "Enterprise" in page and "unlimited" in page and "4 d 4 h" in page  # 100 h
    plan = Plan.objects.get(slug="free")
    assert staff.post(admin_url(Plan, "change", plan.pk), {"name": "x"}).status_code == 403
