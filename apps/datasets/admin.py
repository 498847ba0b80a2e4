from django.contrib import admin

from apps.core.admin import TenantModelAdmin
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion


@admin.register(Dataset)
class DatasetAdmin(TenantModelAdmin):
    list_display = ["name", "organization", "created_by", "created_at"]
    search_fields = ["name", "organization__name"]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(TenantModelAdmin):
    list_display = ["dataset", "number", "organization", "status", "item_count", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["class_counts", "skipped"]


@admin.register(DatasetItem)
class DatasetItemAdmin(TenantModelAdmin):
    list_display = ["original_name", "label", "split", "version", "organization"]
    list_filter = ["split"]
