from django.contrib import admin

from apps.core.admin import TenantModelAdmin
from apps.deployments.models import Endpoint


@admin.register(Endpoint)
class EndpointAdmin(TenantModelAdmin):
    list_display = ["name", "organization", "model_version", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "organization__name"]
