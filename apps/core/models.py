"""Base models: every table has a UUID key and timestamps; tenant-owned tables fail closed.

`TenantModel.objects` filters to the active organization and raises TenantScopeError when there
is none; `TenantModel.objects.for_organization(org)` names the organization explicitly, for
services that already hold it. `TenantModel.all_tenants` returns every tenant's rows: it is the
bypass, allowed only in the modules listed in scripts/check_all_tenants.py (CI fails elsewhere).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.scoping import ALL_TENANTS, TenantScopeError, require_active_organization


class BaseModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True


class TenantQuerySet(models.QuerySet):
    pass


# django-stubs types from_queryset() only when bound to a module-level name, and then every
# super() call here returns an unbound QuerySet: the base stays untyped instead.
class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    """Default manager of tenant-owned models: only the active organization's rows."""

    def get_queryset(self) -> TenantQuerySet:
        organization = require_active_organization()
        if organization is ALL_TENANTS:
            return super().get_queryset()
        return super().get_queryset().filter(organization=organization)

    def for_organization(self, organization: Any) -> TenantQuerySet:
        """Rows of `organization`, whatever the active scope: for code that already holds it."""
        if organization is None:
            raise TenantScopeError("for_organization() needs an organization, got None")
        return super().get_queryset().filter(organization=organization)

    def create(self, **kwargs: Any) -> Any:
        """Create in the named organization, or else in the active one (never platform-wide)."""
        organization = kwargs.get("organization") or kwargs.get("organization_id")
        if organization is None:
            organization = require_active_organization()
            if organization is ALL_TENANTS:
                raise TenantScopeError("Name the organization when creating platform-wide.")
            kwargs["organization"] = organization
        return self.for_organization(organization).create(**kwargs)


class TenantModel(BaseModel):
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("organization"),
    )

    objects = TenantManager()
    all_tenants = models.Manager()  # noqa: DJ012 - a manager, not a field

    class Meta:
        abstract = True
        default_manager_name = "objects"
        base_manager_name = "all_tenants"
