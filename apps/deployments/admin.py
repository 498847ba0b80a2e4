"""Endpoints in the admin: staff may rename one or switch it off; it is made by the portal's
service (which checks the model version) and deleted through it (audited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.admin import ServiceDeleteAdmin
from apps.deployments.models import Endpoint
from apps.deployments.services import endpoint_delete
from apps.tenants.models import Role


@admin.register(Endpoint)
class EndpointAdmin(ServiceDeleteAdmin):
    list_display = ["name", "organization", "model_version", "is_active", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["organization", "model_version__model_config"]
    search_fields = ["name", "organization__name"]
    fields = ["name", "is_active", "organization", "model_version", "created_by", "created_at"]
    readonly_fields = ["organization", "model_version", "created_by", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_with_service(self, request: HttpRequest, obj: Any) -> str:
        return endpoint_delete(endpoint=obj, user=request.user, role=Role.OWNER)
