"""The platform console: every organization with its plan and what it uses, in the Django admin.

It extends the Organization admin of apps.tenants (registered again here, with more columns,
the quota inline and the change-plan action). Every change goes through a service that writes
an audit row: suspend and resume (apps.tenants.services), change plan and quotas
(apps.quotas.services). The list is one query whatever its length: each figure is a subquery.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.accounts.models import User
from apps.analytics.models import UsageEvent
from apps.audit.models import AuditEvent
from apps.core.admin import SizeField, ViewOnlyMixin, humanized, size_display
from apps.core.text import human_duration, human_size
from apps.quotas.models import LIMIT_FIELDS, OrganizationQuota, Plan
from apps.quotas.selectors import default_plan, limits_of, month_start
from apps.quotas.services import organization_plan_set, quota_override_set
from apps.tenants.admin import OrganizationAdmin
from apps.tenants.models import Membership, Organization
from apps.training.models import TrainingRun

#: the largest number a limit column holds (a signed 64-bit integer)
LIMIT_MAX = 2**63 - 1
#: "never" in the last-activity column, which SQL compares as a date
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _limit_field(name: str) -> forms.Field:
    label = capfirst(str(LIMIT_FIELDS[name]))
    help_text = _("Empty: the plan's value.")
    if name == "storage_bytes":
        field: forms.Field = SizeField(
            label=label,
            required=False,
            help_text=_("For example 5 GB, 500 MB, or a number of bytes. Empty: the plan's."),
        )
    else:
        field = forms.IntegerField(label=label, required=False, help_text=help_text)
    return field


class OrganizationQuotaForm(forms.ModelForm):
    """The organization's plan and its own limits; saved through the quota services."""

    class Meta:
        model = OrganizationQuota
        fields = ["plan", *LIMIT_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in LIMIT_FIELDS:
            self.fields[name] = _limit_field(name)
        if self.instance.pk is None:
            plan = default_plan()
            self.fields["plan"].initial = plan.pk if plan else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in LIMIT_FIELDS:
            value = cleaned.get(name)
            if value is not None and not 0 <= value <= LIMIT_MAX:
                self.add_error(
                    name,
                    _("Write a whole number from 0 to %(max)s, or leave it empty.")
                    % {"max": f"{LIMIT_MAX:,}"},
                )
        return cleaned


class OrganizationQuotaInline(admin.StackedInline):
    model = OrganizationQuota
    form = OrganizationQuotaForm
    extra = 1
    max_num = 1
    can_delete = False
    verbose_name = _("plan and quotas")
    verbose_name_plural = _("plan and quotas")


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(
        label=_("Plan"), queryset=Plan.objects.all(), empty_label=None, to_field_name="slug"
    )


class PlatformOrganizationAdmin(OrganizationAdmin):
    """Organizations with members, region, plan, storage, this month's use and last activity."""

    list_display = [
        "name",
        "region",
        "plan",
        "members",
        "used",
        "storage_quota",
        "gpu_this_month",
        "predictions_this_month",
        "last_activity",
        "state",
    ]
    list_select_related = ["quota__plan"]
    inlines = [*OrganizationAdmin.inlines, OrganizationQuotaInline]
    actions = [*OrganizationAdmin.actions, "change_plan"]

    gpu_this_month = humanized("gpu_this_month", _("GPU this month"), human_duration)
    members = humanized("member_count", _("members"), str)
    predictions_this_month = humanized(
        "predictions_this_month", _("predictions this month"), lambda n: f"{n:,}"
    )
    used = size_display("storage_used", _("storage used"))

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        since = month_start()
        members = (
            Membership.objects.filter(organization=OuterRef("pk"))
            .values("organization")
            .annotate(n=Count("pk"))
            .values("n")
        )
        gpu = (
            TrainingRun.objects.for_organization(OuterRef("pk"))
            .filter(created_at__gte=since)
            .values("organization")
            .annotate(total=Sum("gpu_seconds"))
            .values("total")
        )
        predictions = (
            UsageEvent.objects.for_organization(OuterRef("pk"))
            .filter(kind=UsageEvent.Kind.PREDICT, status_code=200, created_at__gte=since)
            .values("organization")
            .annotate(n=Count("pk"))
            .values("n")
        )
        last_usage = UsageEvent.objects.for_organization(OuterRef("pk")).order_by("-created_at")
        last_audit = AuditEvent.objects.for_organization(OuterRef("pk")).order_by("-created_at")
        last_login = User.objects.filter(memberships__organization=OuterRef("pk")).order_by(
            "-last_login"
        )
        # GREATEST is NULL on SQLite when any argument is: "never" stands in for a missing one.
        never = Value(NEVER)
        return (
            super()
            .get_queryset(request)
            .select_related("quota__plan")
            .annotate(
                member_count=Coalesce(Subquery(members), 0),
                gpu_this_month=Coalesce(Subquery(gpu), 0.0),
                predictions_this_month=Coalesce(Subquery(predictions), 0),
                last_activity_at=Greatest(
                    Coalesce(Subquery(last_usage.values("created_at")[:1]), never),
                    Coalesce(Subquery(last_audit.values("created_at")[:1]), never),
                    Coalesce(Subquery(last_login.values("last_login")[:1]), never),
                ),
            )
        )

    def _limits(self, organization: Organization) -> Any:
        try:
            quota = organization.quota  # type: ignore[attr-defined]
        except ObjectDoesNotExist:
            return limits_of(default_plan(), None)
        return limits_of(quota.plan, quota)

    @admin.display(description=_("plan"), ordering="quota__plan__name")
    def plan(self, organization: Organization) -> str:
        limits = self._limits(organization)
        name = limits.plan_name or self.get_empty_value_display()
        if limits.overridden:
            return str(_("%(plan)s, with its own limits") % {"plan": name})
        return name

    @admin.display(description=_("quota"))
    def storage_quota(self, organization: Organization) -> str:
        value = self._limits(organization).storage_bytes
        return str(_("unlimited")) if value is None else human_size(value)

    @admin.display(description=_("last activity"), ordering="last_activity_at")
    def last_activity(self, organization: Organization) -> str:
        when = getattr(organization, "last_activity_at", None)
        if when is None or when <= NEVER:
            return self.get_empty_value_display()
        # The day is enough to tell a live organization from a dormant one, and fits the row.
        return date_format(timezone.localtime(when), "SHORT_DATE_FORMAT")

    @admin.display(description=_("state"), ordering="suspended_at")
    def state(self, organization: Organization) -> str:
        if organization.is_suspended:
            return str(_("suspended"))
        return str(_("active")) if organization.is_active else str(_("deactivated"))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not OrganizationQuota:
            super().save_formset(request, form, formset, change)
            return
        # Through the services, which audit each change; Django's own save would not.
        organization = form.instance
        for quota_form in formset.forms:
            if not quota_form.has_changed():
                continue
            data = quota_form.cleaned_data
            current = getattr(quota_form.instance, "plan_id", None)
            if "plan" in quota_form.changed_data or current is None:
                organization_plan_set(
                    organization=organization, plan=data["plan"], actor=request.user
                )
            overrides = [name for name in LIMIT_FIELDS if name in quota_form.changed_data]
            if overrides:
                quota_override_set(
                    organization=organization,
                    actor=request.user,
                    **{name: data[name] for name in overrides},
                )
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description=_("Change the plan of the selected organizations"))
    def change_plan(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        form = ChangePlanForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": _("Change plan"),
                "organizations": queryset,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/quotas/change_plan.html", context)
        plan = form.cleaned_data["plan"]
        done = 0
        for organization in queryset:
            organization_plan_set(organization=organization, plan=plan, actor=request.user)
            done += 1
        message = ngettext(
            "Moved %(n)d organization to the %(plan)s plan.",
            "Moved %(n)d organizations to the %(plan)s plan.",
            done,
        )
        self.message_user(request, message % {"n": done, "plan": plan.name}, messages.SUCCESS)
        return None


admin.site.unregister(Organization)
admin.site.register(Organization, PlatformOrganizationAdmin)


@admin.register(Plan)
class PlanAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """Plans are changed by a reviewed data migration (a change moves every organization on
    the plan at once); staff give one organization other limits with its own overrides."""

    list_display = [
        "name",
        "slug",
        "api_requests_per_minute_per_key",
        "api_requests_per_minute_per_organization",
        "predict_requests_per_minute_per_key",
        "predict_requests_per_minute_per_organization",
        "predictions_per_month",
        "gpu_time",
        "concurrent_training_runs",
        "storage",
    ]
    gpu_time = humanized("gpu_seconds_per_month", _("GPU time per month"), human_duration)
    storage = size_display("storage_bytes", _("storage"))

    def get_empty_value_display(self) -> str:
        return str(_("unlimited"))
