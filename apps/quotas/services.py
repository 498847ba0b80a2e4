"""Writes for plans and quotas, and the checks that refuse work over a quota.

Quotas (monthly predictions and GPU-seconds, concurrent training runs, storage) answer 403 with
the code `quota_exceeded` (apps.core.errors.QuotaExceeded): waiting a minute does not help, so
unlike the per-minute rate limits (429 with Retry-After, apps.quotas.throttling) they name no
time to retry; the message names the quota, the use and who can raise it.
"""

from __future__ import annotations

from typing import Any, Final

from django.db import transaction
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from apps.accounts.throttling import shared_counter_get, shared_counter_incr
from apps.audit.services import audit_record
from apps.core.errors import InvalidInput, QuotaExceeded
from apps.core.text import human_duration
from apps.quotas.models import LIMIT_FIELDS, OrganizationQuota, Plan
from apps.quotas.selectors import (
    Limits,
    default_plan,
    gpu_seconds_this_month,
    month_start,
    organization_limits,
    predictions_this_month,
    training_runs_active,
)
from apps.tenants.models import Organization


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


#: a limit left as it is by quota_override_set
UNCHANGED: Final = _Unchanged()

Override = int | None | _Unchanged


def _raise_hint() -> str:
    return _("An owner can ask the platform's administrators to raise it.")


def _quota_row(organization: Organization) -> OrganizationQuota:
    """The organization's quota row, locked; created on the default plan when missing."""
    quota = (
        OrganizationQuota.objects.select_for_update()
        .select_related("plan", "organization")
        .filter(organization_id=organization.pk)
        .first()
    )
    if quota is not None:
        return quota
    plan = default_plan()
    if plan is None:
        raise InvalidInput(
            _(
                "There is no plan %(slug)s (LEPTON_DEFAULT_PLAN) to start from; create it in "
                "the admin or choose a plan for the organization."
            )
            % {"slug": _default_slug()},
            field="plan",
        )
    return OrganizationQuota.objects.create(organization=organization, plan=plan)


def _default_slug() -> str:
    from django.conf import settings

    return str(settings.LEPTON_DEFAULT_PLAN)


def quota_override_set(
    *,
    organization: Organization,
    actor: Any = None,
    api_requests_per_minute_per_key: Override = UNCHANGED,
    api_requests_per_minute_per_organization: Override = UNCHANGED,
    predict_requests_per_minute_per_key: Override = UNCHANGED,
    predict_requests_per_minute_per_organization: Override = UNCHANGED,
    predictions_per_month: Override = UNCHANGED,
    gpu_seconds_per_month: Override = UNCHANGED,
    concurrent_training_runs: Override = UNCHANGED,
    storage_bytes: Override = UNCHANGED,
) -> OrganizationQuota:
    """Set limits for `organization` alone, over its plan's: a number sets one, None clears it
    (back to the plan's value), a limit not named stays as it is. Audited.

    Raises:
        InvalidInput: a negative or non-integer value.
    """
    given = {
        "api_requests_per_minute_per_key": api_requests_per_minute_per_key,
        "api_requests_per_minute_per_organization": api_requests_per_minute_per_organization,
        "predict_requests_per_minute_per_key": predict_requests_per_minute_per_key,
        "predict_requests_per_minute_per_organization": (
            predict_requests_per_minute_per_organization
        ),
        "predictions_per_month": predictions_per_month,
        "gpu_seconds_per_month": gpu_seconds_per_month,
        "concurrent_training_runs": concurrent_training_runs,
        "storage_bytes": storage_bytes,
    }
    changes: dict[str, int | None] = {}
    for name, value in given.items():
        if isinstance(value, _Unchanged):
            continue
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise InvalidInput(
                _("%(limit)s must be a whole number of 0 or more, or empty for the plan's value.")
                % {"limit": capfirst(str(LIMIT_FIELDS[name]))},
                field=name,
            )
        changes[name] = value
    with transaction.atomic():
        quota = _quota_row(organization)
        before = {name: getattr(quota, name) for name in changes}
        for name, value in changes.items():
            setattr(quota, name, value)
        quota.save()
        audit_record(
            organization=organization,
            actor=actor,
            action="quota.override",
            target=quota,
            data={"before": before, "after": changes},
        )
    return quota


def organization_plan_set(
    *, organization: Organization, plan: Plan, actor: Any = None
) -> OrganizationQuota:
    """Put `organization` on `plan`; its own overrides stay. Audited."""
    with transaction.atomic():
        quota = _quota_row(organization)
        before = quota.plan.slug
        quota.plan = plan
        quota.save(update_fields=["plan", "updated_at"])
        audit_record(
            organization=organization,
            actor=actor,
            action="quota.plan",
            target=quota,
            data={"before": before, "after": plan.slug},
        )
    return quota


def quota_check_predictions(*, organization_id: Any) -> None:
    """Refuse a prediction once the organization's month of predictions is used up.

    Raises:
        QuotaExceeded: the predictions served this month (UTC) reached the quota.
    """
    limit = _limits_by_id(organization_id).predictions_per_month
    if limit is None:
        return
    used = predictions_used_this_month(organization_id=organization_id)
    if used >= limit:
        raise QuotaExceeded(
            _(
                "Your organization has used its quota of %(limit)s predictions this month "
                "(%(used)s served since the 1st, UTC); predictions resume on the 1st of next "
                "month."
            )
            % {"limit": f"{limit:,}", "used": f"{used:,}"}
            + " "
            + _raise_hint()
        )


def _predictions_counter_key(organization_id: Any) -> str:
    return f"quota:predictions:{organization_id}:{month_start():%Y-%m}"


def predictions_used_this_month(*, organization_id: Any) -> int:
    """The month's served predictions, as the quota check reads them: a counter in the shared
    `throttle` cache, seeded from the usage table (the exact metering) when missing, so a
    prediction costs no COUNT over the month's events. Predictions served while the counter is
    being seeded can slip past it; the usage table, and so billing, still counts every one."""
    return shared_counter_get(
        _predictions_counter_key(organization_id),
        lambda: predictions_this_month(organization_id=organization_id),
        timeout=_COUNTER_SECONDS,
    )


def quota_count_prediction_served(*, organization_id: Any) -> None:
    """Count one served prediction in the quota's counter (apps.analytics.usage_record calls
    this as it meters a prediction answered 200)."""
    shared_counter_incr(_predictions_counter_key(organization_id))


#: a month's counter outlives its month (its key names the month), then expires
_COUNTER_SECONDS = 35 * 24 * 3600


def quota_check_training_start(*, organization: Organization) -> None:
    """Refuse a new training run over the organization's concurrent runs or once its month's
    GPU-seconds are used up. Call inside the transaction that creates the run, which this locks
    the organization's row for, so two starts at once cannot both take the last place.

    Raises:
        QuotaExceeded: naming the quota, the use and who can raise it.
    """
    limits = organization_limits(organization)
    if limits.concurrent_training_runs is None and limits.gpu_seconds_per_month is None:
        return
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    concurrent = limits.concurrent_training_runs
    if concurrent is not None:
        active = training_runs_active(organization_id=organization.pk)
        if active >= concurrent:
            raise QuotaExceeded(
                _(
                    "Your organization may have %(limit)d training runs queued or running at "
                    "once, and has %(active)d. Wait for one to finish or cancel one."
                )
                % {"limit": concurrent, "active": active}
                + " "
                + _raise_hint()
            )
    gpu_limit = limits.gpu_seconds_per_month
    if gpu_limit is not None:
        used = gpu_seconds_this_month(organization_id=organization.pk)
        if used >= gpu_limit:
            raise QuotaExceeded(
                _(
                    "Your organization has used %(used)s of its %(limit)s of GPU time this "
                    "month (UTC); training resumes on the 1st of next month."
                )
                % {"used": human_duration(used), "limit": human_duration(gpu_limit)}
                + " "
                + _raise_hint()
            )


def _limits_by_id(organization_id: Any) -> Limits:
    # The predict path holds the endpoint, whose organization_id suffices: no fetch of the row.
    return organization_limits(Organization(pk=organization_id))
