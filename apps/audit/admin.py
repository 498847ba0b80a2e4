from django.contrib import admin

from apps.audit.models import AuditEvent
from apps.core.admin import TenantModelAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(TenantModelAdmin):
    list_display = ["created_at", "organization", "actor", "action", "target_repr"]
    list_filter = ["action"]
    search_fields = ["action", "target_repr", "organization__name"]
