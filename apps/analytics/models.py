"""Usage events: one row per prediction call (and later, per billable action)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import TenantModel


class UsageEvent(TenantModel):
    class Kind(models.TextChoices):
        PREDICT = "predict", _("Prediction")

    kind = models.CharField(max_length=32, choices=Kind, default=Kind.PREDICT)
    endpoint = models.ForeignKey(
        "deployments.Endpoint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_events",
    )
    status_code = models.PositiveSmallIntegerField()
    latency_ms = models.FloatField()
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"])]
        verbose_name = _("usage event")
        verbose_name_plural = _("usage events")

    def __str__(self) -> str:
        return f"{self.kind} {self.status_code} {self.latency_ms:.1f} ms"
