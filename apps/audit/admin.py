"""Audit events record who did what; nobody edits or removes them here. View-only."""

from __future__ import annotations

from django.contrib import admin

from apps.audit.models import AuditEvent
from apps.core.admin import TenantModelAdmin, ViewOnlyMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ViewOnlyMixin, TenantModelAdmin):
    list_display = ["created_at", "organization", "actor", "action", "target_repr"]
    list_filter = ["action"]
    list_select_related = ["organization", "actor"]
    search_fields = ["action", "target_repr", "organization__name"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "organization",
        "actor",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "data",
    ]
