"""Which limits are in force: the plan's, an organization's own overrides over them, the default
plan for an organization without a row; every change audited."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput
from apps.quotas.models import Plan
from apps.quotas.selectors import default_plan_forget, organization_limits
from apps.quotas.services import organization_plan_set, quota_override_set

GIB = 1024**3


def test_it_puts_an_organization_without_a_row_on_the_default_plan(tenant):
    limits = organization_limits(tenant.organization)
    assert limits.plan_slug == "team"
    assert limits.storage_bytes == 5 * GIB
    assert limits.concurrent_training_runs == 4
    assert limits.overridden == frozenset()


def test_it_reads_the_default_plan_from_the_setting(tenant, settings):
    settings.LEPTON_DEFAULT_PLAN = "free"
    default_plan_forget()
    try:
        limits = organization_limits(tenant.organization)
        assert (limits.plan_slug, limits.storage_bytes) == ("free", 1 * GIB)
    finally:
        settings.LEPTON_DEFAULT_PLAN = "team"
        default_plan_forget()


def test_an_override_beats_the_plan_and_clearing_it_restores_the_plans(tenant, outsider):
    quota_override_set(organization=tenant.organization, storage_bytes=7, predictions_per_month=3)
    limits = organization_limits(tenant.organization)
    assert (limits.storage_bytes, limits.predictions_per_month) == (7, 3)
    assert limits.overridden == {"storage_bytes", "predictions_per_month"}
    assert organization_limits(outsider.organization).storage_bytes == 5 * GIB

    organization_plan_set(organization=tenant.organization, plan=Plan.objects.get(slug="free"))
    limits = organization_limits(tenant.organization)
    assert (limits.plan_slug, limits.storage_bytes, limits.api_requests_per_minute_per_key) == (
        "free",
        7,
        60,
    )
    quota_override_set(organization=tenant.organization, storage_bytes=None)
    assert organization_limits(tenant.organization).storage_bytes == 1 * GIB
    assert organization_limits(tenant.organization).predictions_per_month == 3


def test_an_unlimited_plan_value_is_none(tenant):
    enterprise = Plan.objects.get(slug="enterprise")
    organization_plan_set(organization=tenant.organization, plan=enterprise)
    limits = organization_limits(tenant.organization)
    assert limits.predictions_per_month is None and limits.gpu_seconds_per_month is None


@pytest.mark.parametrize("value", [-1, 1.5, "10", True])
def test_it_refuses_an_override_that_is_not_a_whole_number(tenant, value):
    with pytest.raises(InvalidInput, match="Storage must be a whole number") as refused:
        quota_override_set(organization=tenant.organization, storage_bytes=value)
    assert refused.value.field == "storage_bytes"
    assert organization_limits(tenant.organization).overridden == frozenset()


def test_every_change_is_audited(tenant):
    quota_override_set(organization=tenant.organization, actor=tenant.user, storage_bytes=9)
    organization_plan_set(
        organization=tenant.organization, plan=Plan.objects.get(slug="enterprise")
    )
    events = AuditEvent.objects.for_organization(tenant.organization)
    override = events.get(action="quota.override")
    assert override.data == {"before": {"storage_bytes": None}, "after": {"storage_bytes": 9}}
    assert override.actor == tenant.user
    assert events.get(action="quota.plan").data == {"before": "team", "after": "enterprise"}
