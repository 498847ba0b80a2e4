"""Reads: the limits and quotas in force for an organization, and what it has used of them.

The limit in force is the organization's own override where staff set one, else its plan's
value; an organization without a quota row is on the plan named by LEPTON_DEFAULT_PLAN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from apps.core.jobs import JobStatus
from apps.quotas.models import LIMIT_FIELDS, OrganizationQuota, Plan
from apps.tenants.models import Organization

#: seconds a process keeps the default plan's values before reading them again
DEFAULT_PLAN_TTL = 10.0
_default_plan_cache: dict[str, tuple[float, Plan | None]] = {}


@dataclass(frozen=True)
class Limits:
    """What an organization may use. None means unlimited."""

    storage_bytes: int | None
    api_requests_per_minute_per_key: int | None = None
    api_requests_per_minute_per_organization: int | None = None
    predict_requests_per_minute_per_key: int | None = None
    predict_requests_per_minute_per_organization: int | None = None
    predictions_per_month: int | None = None
    gpu_seconds_per_month: int | None = None
    concurrent_training_runs: int | None = None
    #: the plan the values come from ("" when no plan exists: everything unlimited)
    plan_slug: str = ""
    plan_name: str = ""
    #: the limits set for this organization alone, over its plan's
    overridden: frozenset[str] = frozenset()


def default_plan() -> Plan | None:
    """The plan of organizations without a quota row (LEPTON_DEFAULT_PLAN).

    Kept a few seconds per process: it is read on every API request of such organizations.
    """
    slug = settings.LEPTON_DEFAULT_PLAN
    now = time.monotonic()
    cached = _default_plan_cache.get(slug)
    if cached is not None and now - cached[0] < DEFAULT_PLAN_TTL:
        return cached[1]
    plan = Plan.objects.filter(slug=slug).first()
    _default_plan_cache[slug] = (now, plan)
    return plan


def default_plan_forget() -> None:
    """Read the default plan afresh at the next call (after staff change a plan)."""
    _default_plan_cache.clear()


def organization_limits(organization: Organization) -> Limits:
    """The limits in force for `organization` (its plan's defaults and its own overrides)."""
    quota = (
        OrganizationQuota.objects.select_related("plan")
        .filter(organization_id=organization.pk)
        .first()
    )
    return limits_of(quota.plan if quota else default_plan(), quota)


def limits_of(plan: Plan | None, quota: OrganizationQuota | None) -> Limits:
    """The limits that `quota`'s overrides over `plan` make (both may be missing)."""
    values: dict[str, Any] = {}
    overridden = set()
    for name in LIMIT_FIELDS:
        own = getattr(quota, name, None) if quota is not None else None
        if own is not None:
            overridden.add(name)
        values[name] = own if own is not None else getattr(plan, name, None)
    return Limits(
        **values,
        plan_slug=plan.slug if plan else "",
        plan_name=plan.name if plan else "",
        overridden=frozenset(overridden),
    )


def month_start(now: datetime | None = None) -> datetime:
    """The start of the current calendar month in UTC: monthly quotas count from there."""
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def predictions_this_month(*, organization_id: Any) -> int:
    """Predictions served (answered 200) to the organization since the month began (UTC)."""
    from apps.analytics.models import UsageEvent

    return (
        UsageEvent.objects.for_organization(organization_id)
        .filter(
            kind=UsageEvent.Kind.PREDICT,
            status_code=200,
            created_at__gte=month_start(),
        )
        .count()
    )


def gpu_seconds_this_month(*, organization_id: Any) -> float:
    """GPU-seconds of the organization's training runs created since the month began (UTC),
    running ones included (a run writes its GPU time at every checkpoint)."""
    from apps.training.models import TrainingRun

    total = (
        TrainingRun.objects.for_organization(organization_id)
        .filter(created_at__gte=month_start())
        .aggregate(total=Sum("gpu_seconds"))["total"]
    )
    return float(total or 0.0)


def training_runs_active(*, organization_id: Any) -> int:
    """The organization's queued and running training runs."""
    from apps.training.models import TrainingRun

    return (
        TrainingRun.objects.for_organization(organization_id)
        .filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        .count()
    )


@dataclass(frozen=True)
class LimitUse:
    """One limit as integrators see it: its value (None: unlimited) and what is used of it."""

    name: str
    description: str
    unit: str
    window: str
    value: int | None
    used: float | None
    overridden: bool


#: the unit and the window of each limit, for the usage API
_UNITS = {
    "api_requests_per_minute_per_key": ("requests", "minute"),
    "api_requests_per_minute_per_organization": ("requests", "minute"),
    "predict_requests_per_minute_per_key": ("requests", "minute"),
    "predict_requests_per_minute_per_organization": ("requests", "minute"),
    "predictions_per_month": ("predictions", "month"),
    "gpu_seconds_per_month": ("seconds", "month"),
    "concurrent_training_runs": ("runs", "now"),
    "storage_bytes": ("bytes", "now"),
}


def organization_limits_use(*, organization: Organization) -> tuple[Limits, list[LimitUse]]:
    """Every limit of `organization` with its value and its use (rates: None, they are
    counted per minute in the cache and answered in each 429)."""
    from apps.datasets.storage import organization_storage_used

    limits = organization_limits(organization)
    used: dict[str, float | None] = {
        "predictions_per_month": predictions_this_month(organization_id=organization.pk),
        "gpu_seconds_per_month": gpu_seconds_this_month(organization_id=organization.pk),
        "concurrent_training_runs": training_runs_active(organization_id=organization.pk),
        "storage_bytes": organization_storage_used(organization=organization),
    }
    rows = [
        LimitUse(
            name=field.name,
            description=str(LIMIT_FIELDS[field.name]),
            unit=_UNITS[field.name][0],
            window=_UNITS[field.name][1],
            value=getattr(limits, field.name),
            used=used.get(field.name),
            overridden=field.name in limits.overridden,
        )
        for field in fields(Limits)
        if field.name in LIMIT_FIELDS
    ]
    return limits, rows
