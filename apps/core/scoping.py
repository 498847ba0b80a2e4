"""The active organization (tenant) of the current request or task.

Tenant-owned models refuse to query without one (see apps.core.models.TenantManager). Web views
set it through the base API view / page decorator after checking membership; tasks set it from
the job row they load. A context variable keeps concurrent requests in threads apart.

The scope's lifecycle fails closed on every path, errors included: each entry point runs inside
`unscoped_entry()` (requests: apps.core.middleware.TenantScopeMiddleware; tasks: the Celery base
task, workers.tasks.base.ScopedTask), which starts with no organization, resets whatever the code
inside left behind in a `finally`, and logs an error when a scope leaked in from earlier code on
the same thread. Inside, scopes are set with `tenant_scope()` (a `with` block) or by the API base
view's `dispatch`, both with `try/finally`.
"""

from __future__ import annotations

import contextlib
import logging
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


logger = logging.getLogger(__name__)


class TenantScopeError(RuntimeError):
    """A tenant-owned model was queried with no active organization: a bug, never user input."""


def get_active_organization() -> Organization | None:
    """The organization in scope; None outside any scope and in the platform-wide scope."""
    organization = _active_organization.get()
    return None if isinstance(organization, _AllTenants) else organization


def require_active_organization() -> Organization | _AllTenants:
    organization = _active_organization.get()
    if organization is None:
        raise TenantScopeError(
            "No active organization: wrap the code in tenant_scope(organization) or, for "
            "code that already holds its organization, use "
            "Model.objects.for_organization(organization)."
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


@contextlib.contextmanager
def unscoped_entry(entry: str) -> Iterator[None]:
    """Run an entry point (a request, a task) with no active organization, and leave none.

    A scope still active when the entry starts was leaked by earlier code on this thread: it is
    logged as an error and hidden from the entry (fail closed), never inherited.
    """
    leaked = _active_organization.get()
    if leaked is not None:
        logger.error("%s started with a tenant scope left active (%r); cleared", entry, leaked)
    token = _active_organization.set(None)
    try:
        yield
    finally:
        _active_organization.reset(token)
