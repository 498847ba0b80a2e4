"""Organizations and memberships: what platform staff manage (quotas, regions, roles).

An organization is never deleted here: the cascade would drop every row of the tenant under
its running jobs and leave all of its stored files behind. Staff deactivate it instead.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.admin import size_display
from apps.datasets.storage import storage_used_expression
from apps.tenants.models import Membership, Organization
from apps.tenants.services import organization_resume, organization_suspend


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


class OrganizationForm(forms.ModelForm):
    # The storage quota is set with the plan and the other quotas (apps.quotas.admin).
    class Meta:
        model = Organization
        fields = ["name", "slug", "region", "is_active"]


class SuspendForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown to the organization's members, with whom to contact."),
    )


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationForm
    list_display = [
        "name",
        "slug",
        "region",
        "is_active",
        "suspended_at",
        "used",
        "created_at",
    ]
    list_filter = ["region", "is_active", ("suspended_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "slug"]
    readonly_fields = ["used", "suspended_at", "suspension_reason"]
    fields = [
        "name",
        "slug",
        "region",
        "is_active",
        "used",
        "suspended_at",
        "suspension_reason",
    ]
    inlines = [MembershipInline]
    actions = ["suspend", "resume"]

    used = size_display("storage_used", _("storage used"))

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # What the storage quota counts (apps.datasets.storage.organization_storage_used), as
        # subqueries per row so the column sorts.
        return super().get_queryset(request).annotate(storage_used=storage_used_expression())

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Suspend the selected organizations"))
    def suspend(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        # A first POST asks for the reason on an intermediate page; its form posts back here.
        form = SuspendForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": _("Suspend organizations"),
                "organizations": queryset,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/tenants/suspend.html", context)
        done = jobs = 0
        for organization in queryset:
            if organization.is_suspended:
                continue
            jobs += organization_suspend(
                organization=organization, actor=request.user, reason=form.cleaned_data["reason"]
            )
            done += 1
        message = ngettext(
            "Suspended %(n)d organization; %(jobs)d jobs cancelled.",
            "Suspended %(n)d organizations; %(jobs)d jobs cancelled.",
            done,
        )
        self.message_user(request, message % {"n": done, "jobs": jobs}, messages.SUCCESS)
        return None

    @admin.action(description=_("Resume the selected organizations"))
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = sum(
            organization_resume(organization=organization, actor=request.user)
            for organization in queryset
        )
        message = ngettext("Resumed %(n)d organization.", "Resumed %(n)d organizations.", done)
        self.message_user(request, message % {"n": done}, messages.SUCCESS)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__name"]
    raw_id_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]
