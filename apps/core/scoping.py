"""The active organization (tenant) of the current request or task.

Tenant-owned models refuse to query without one (see apps.core.models.TenantManager). Web views
set it through the base API view / page mixin after checking membership; tasks set it from the
job row they load. A context variable keeps concurrent requests in threads apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.tenants.models import Organization


class _AllTenants:
    """The scope of platform-wide code (the Django admin): every organization's rows."""

    def __repr__(self) -> str:
        return "ALL_TENANTS"


ALL_TENANTS = _AllTenants()

_active_organization: ContextVar[Organization | _AllTenants | None] = ContextVar(
    "lepton_active_organization", default=None
)


class TenantScopeError(RuntimeError):
    """A tenant-owned model was queried with no active organization: a bug, never user input."""


def get_active_organization() -> Organization | None:
    """The organization in scope; None outside any scope and in the platform-wide scope."""
    organization = _active_organization.get()
    return None if organization is ALL_TENANTS else organization


def require_active_organization() -> Organization | _AllTenants:
    organization = _active_organization.get()
    if organization is None:
        raise TenantScopeError(
            "No active organization: wrap the code in tenant_scope(organization) or, for "
            "platform-wide code that must see every tenant, use Model.all_tenants explicitly."
        )
    return organization


def activate(organization: Organization) -> Token:
    """Set the active organization; pair with deactivate(token). Prefer tenant_scope()."""
    return _active_organization.set(organization)


def deactivate(token: Token) -> None:
    _active_organization.reset(token)


@contextlib.contextmanager
def dangerously_all_tenants() -> Iterator[None]:
    """Let tenant-owned models see every organization inside the block.

    For platform-wide code only (the Django admin of platform staff). The name is meant to
    stand out in review.
    """
    token = _active_organization.set(ALL_TENANTS)
    try:
        yield
    finally:
        _active_organization.reset(token)


@contextlib.contextmanager
def tenant_scope(organization: Organization) -> Iterator[Organization]:
    """Make `organization` the active tenant inside the block."""
    if organization is None:
        raise TenantScopeError("tenant_scope() needs an organization, got None")
    token = _active_organization.set(organization)
    try:
        yield organization
    finally:
        _active_organization.reset(token)
