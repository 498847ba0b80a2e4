"""Plans (named sets of default limits) and each organization's plan with its own overrides.

Every limit is a number or None. On a plan, None means unlimited; on an organization's quota
row, None means "the plan's value". An organization without a quota row is on the plan named by
LEPTON_DEFAULT_PLAN.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel

#: the limits a plan sets and an organization may override, with how people name them
LIMIT_FIELDS: dict[str, str] = {
    "api_requests_per_minute_per_key": _("API requests per minute per key"),
    "api_requests_per_minute_per_organization": _("API requests per minute per organization"),
    "predict_requests_per_minute_per_key": _("predict requests per minute per key"),
    "predict_requests_per_minute_per_organization": _(
        "predict requests per minute per organization"
    ),
    "predictions_per_month": _("predictions per month"),
    "gpu_seconds_per_month": _("GPU-seconds per month"),
    "concurrent_training_runs": _("concurrent training runs"),
    "storage_bytes": _("storage"),
}


def _limit_field(name: str, help_text: str) -> models.PositiveBigIntegerField:
    return models.PositiveBigIntegerField(
        LIMIT_FIELDS[name], null=True, blank=True, help_text=help_text
    )


class Plan(BaseModel):
    """Default limits for the organizations on it. Empty (None): unlimited."""

    slug = models.SlugField(_("slug"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=80)
    _unlimited = _("Empty: unlimited.")
    api_requests_per_minute_per_key = _limit_field("api_requests_per_minute_per_key", _unlimited)
    api_requests_per_minute_per_organization = _limit_field(
        "api_requests_per_minute_per_organization", _unlimited
    )
    predict_requests_per_minute_per_key = _limit_field(
        "predict_requests_per_minute_per_key", _unlimited
    )
    predict_requests_per_minute_per_organization = _limit_field(
        "predict_requests_per_minute_per_organization", _unlimited
    )
    predictions_per_month = _limit_field("predictions_per_month", _unlimited)
    gpu_seconds_per_month = _limit_field("gpu_seconds_per_month", _unlimited)
    concurrent_training_runs = _limit_field("concurrent_training_runs", _unlimited)
    storage_bytes = _limit_field("storage_bytes", _unlimited)
    del _unlimited

    class Meta:
        ordering = ["name"]
        verbose_name = _("plan")
        verbose_name_plural = _("plans")

    def __str__(self) -> str:
        return self.name


class OrganizationQuota(BaseModel):
    """An organization's plan, and the limits platform staff set for it alone."""

    organization = models.OneToOneField(
        "tenants.Organization", on_delete=models.CASCADE, related_name="quota"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="quotas")
    _plan_value = _("Empty: the plan's value.")
    api_requests_per_minute_per_key = _limit_field("api_requests_per_minute_per_key", _plan_value)
    api_requests_per_minute_per_organization = _limit_field(
        "api_requests_per_minute_per_organization", _plan_value
    )
    predict_requests_per_minute_per_key = _limit_field(
        "predict_requests_per_minute_per_key", _plan_value
    )
    predict_requests_per_minute_per_organization = _limit_field(
        "predict_requests_per_minute_per_organization", _plan_value
    )
    predictions_per_month = _limit_field("predictions_per_month", _plan_value)
    gpu_seconds_per_month = _limit_field("gpu_seconds_per_month", _plan_value)
    concurrent_training_runs = _limit_field("concurrent_training_runs", _plan_value)
    storage_bytes = _limit_field("storage_bytes", _plan_value)
    del _plan_value

    class Meta:
        verbose_name = _("organization quota")
        verbose_name_plural = _("organization quotas")

    def __str__(self) -> str:
        return f"{self.organization} ({self.plan})"
