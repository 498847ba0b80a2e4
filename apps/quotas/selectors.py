"""Reads: the limits and quotas in force for an organization."""

from __future__ import annotations

from dataclasses import dataclass

from apps.tenants.models import Organization


@dataclass(frozen=True)
class Limits:
    """What an organization may use. None means unlimited."""

    storage_bytes: int | None


def organization_limits(organization: Organization) -> Limits:
    """The limits in force for `organization` (its plan's defaults and its own overrides)."""
    return Limits(storage_bytes=organization.storage_quota_bytes)
