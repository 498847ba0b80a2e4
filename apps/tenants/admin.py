"""Organizations and memberships: what platform staff manage (quotas, regions, roles).

An organization is never deleted here: the cascade would drop every row of the tenant under
its running jobs and leave all of its stored files behind. Staff deactivate it instead.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.core.admin import SizeField, size_display
from apps.datasets.models import DatasetVersion
from apps.tenants.models import Membership, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


class OrganizationForm(forms.ModelForm):
    storage_quota_bytes = SizeField(
        label=_("Storage quota"),
        help_text=_("For example 5 GB, 500 MB, or a number of bytes."),
    )

    class Meta:
        model = Organization
        fields = ["name", "slug", "region", "is_active", "storage_quota_bytes"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationForm
    list_display = ["name", "slug", "region", "is_active", "quota", "used", "created_at"]
    list_filter = ["region", "is_active"]
    search_fields = ["name", "slug"]
    readonly_fields = ["used"]
    fields = ["name", "slug", "region", "is_active", "storage_quota_bytes", "used"]
    inlines = [MembershipInline]

    quota = size_display("storage_quota_bytes", _("storage quota"))
    used = size_display("storage_used", _("storage used"))

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # What the upload quota check counts (apps.datasets.services.organization_storage_used),
        # as one subquery per row so the column sorts.
        stored = (
            DatasetVersion.objects.for_organization(OuterRef("pk"))
            .values("organization")
            .annotate(total=Sum(F("source_size") + F("stored_bytes")))
            .values("total")
        )
        return super().get_queryset(request).annotate(storage_used=Coalesce(Subquery(stored), 0))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__name"]
    raw_id_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]
