from django.contrib import admin

from apps.analytics.models import UsageEvent
from apps.core.admin import TenantModelAdmin


@admin.register(UsageEvent)
class UsageEventAdmin(TenantModelAdmin):
    list_display = [
        "created_at",
        "organization",
        "kind",
        "endpoint",
        "status_code",
        "latency_ms",
        "training_run",
        "device",
        "gpu_seconds",
    ]
    list_filter = ["kind", "status_code", "device"]
