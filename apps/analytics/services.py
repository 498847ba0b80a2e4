"""Recording usage."""

from __future__ import annotations

from typing import Any

from apps.analytics.models import UsageEvent
from apps.quotas.services import quota_count_prediction_served


def usage_record(
    *, organization: Any, endpoint: Any, status_code: int, latency_ms: float, api_key: Any = None
) -> UsageEvent:
    """Record one prediction call, successful or not; a served one (200) also counts toward
    the organization's monthly predictions quota."""
    event = UsageEvent.objects.create(
        organization=organization,
        kind=UsageEvent.Kind.PREDICT,
        endpoint=endpoint,
        status_code=status_code,
        latency_ms=latency_ms,
        api_key=api_key,
    )
    if status_code == 200:
        quota_count_prediction_served(organization_id=event.organization_id)
    return event


def usage_record_training(*, run: Any, device: str, gpu_seconds: float) -> UsageEvent:
    """Record a finished training run's device and GPU time (once per run)."""
    event, _ = UsageEvent.objects.for_organization(run.organization_id).get_or_create(
        organization_id=run.organization_id,
        kind=UsageEvent.Kind.TRAINING,
        training_run=run,
        defaults={"device": device, "gpu_seconds": gpu_seconds},
    )
    return event
