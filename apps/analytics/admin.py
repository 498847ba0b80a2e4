from django.contrib import admin

from apps.analytics.models import UsageEvent
from apps.core.admin import TenantModelAdmin


@admin.register(UsageEvent)
class UsageEventAdmin(TenantModelAdmin):
    list_display = ["created_at", "organization", "endpoint", "status_code", "latency_ms"]
    list_filter = ["kind", "status_code"]
