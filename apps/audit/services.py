"""Writing audit events."""

from __future__ import annotations

from typing import Any

from django.db import models

from apps.audit.models import AuditEvent


def audit_record(
    *,
    organization: Any,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    data: dict | None = None,
) -> AuditEvent:
    """Record that `actor` did `action` on `target` inside `organization`."""
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        data=data or {},
    )
