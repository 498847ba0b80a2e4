"""Usage events are metering: counted once, by the service that did the work. View-only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.analytics.models import UsageEvent
from apps.core.admin import TenantModelAdmin, ViewOnlyMixin, ms_display
from apps.core.text import human_duration


@admin.register(UsageEvent)
class UsageEventAdmin(ViewOnlyMixin, TenantModelAdmin):
    list_display = [
        "created_at",
        "organization",
        "kind",
        "endpoint",
        "status_code",
        "latency",
        "training_run",
        "device",
        "gpu_time",
    ]
    list_filter = ["kind", "status_code", "device"]
    list_select_related = ["organization", "endpoint", "training_run__model_config"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "organization",
        "kind",
        "endpoint",
        "api_key",
        "status_code",
        "latency",
        "training_run",
        "device",
        "gpu_time",
    ]

    latency = ms_display("latency_ms", _("latency"))

    @admin.display(description=_("GPU time"), ordering="gpu_seconds")
    def gpu_time(self, event: UsageEvent) -> str:
        """Only training uses GPU time; a prediction's 0 would read as a measurement."""
        if event.kind != UsageEvent.Kind.TRAINING:
            return self.get_empty_value_display()
        return human_duration(event.gpu_seconds)
