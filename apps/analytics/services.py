"""Recording usage."""

from __future__ import annotations

from typing import Any

from apps.analytics.models import UsageEvent


def usage_record(
    *, organization: Any, endpoint: Any, status_code: int, latency_ms: float, api_key: Any = None
) -> UsageEvent:
    """Record one prediction call, successful or not."""
    return UsageEvent.unscoped.create(
        organization=organization,
        kind=UsageEvent.Kind.PREDICT,
        endpoint=endpoint,
        status_code=status_code,
        latency_ms=latency_ms,
        api_key=api_key,
    )
