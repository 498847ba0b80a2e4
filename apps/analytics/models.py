"""Usage events: one row per prediction call (and later, per billable action)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import TenantModel


class UsageEvent(TenantModel):
    class Kind(models.TextChoices):
        PREDICT = "predict", _("Prediction")
        TRAINING = "training", _("Training")

    kind = models.CharField(max_length=32, choices=Kind, default=Kind.PREDICT)
    endpoint = models.ForeignKey(
        "deployments.Endpoint",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_events",
    )
    #: a prediction's HTTP status and latency (None for training)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    #: a training run's device ("cuda" or "cpu") and GPU-seconds (0 on the CPU)
    training_run = models.ForeignKey(
        "training.TrainingRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_events",
    )
    device = models.CharField(max_length=16, blank=True)
    gpu_seconds = models.FloatField(default=0.0)
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"])]
        verbose_name = _("usage event")
        verbose_name_plural = _("usage events")

    def __str__(self) -> str:
        if self.kind == self.Kind.TRAINING:
            return f"{self.kind} {self.device} {self.gpu_seconds:.1f} GPU-s"
        return f"{self.kind} {self.status_code} {self.latency_ms or 0:.1f} ms"
