"""Datasets in the admin: a dataset's name and description are staff's to fix; its versions are
ingestion jobs and its items belong to an immutable version, so both are view-only. Deleting a
dataset goes through apps.datasets.deletion (files freed, refused mid-ingestion)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.admin import (
    JobAdmin,
    ServiceDeleteAdmin,
    TenantModelAdmin,
    ViewOnlyMixin,
    size_display,
    stored_name_display,
)
from apps.datasets.deletion import dataset_delete
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion
from apps.tenants.models import Role


@admin.register(Dataset)
class DatasetAdmin(ServiceDeleteAdmin):
    list_display = ["name", "organization", "kind", "created_by", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["organization", "created_by"]
    search_fields = ["name", "organization__name"]
    fields = ["name", "description", "organization", "kind", "created_by", "created_at"]
    readonly_fields = ["organization", "kind", "created_by", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a dataset starts with an upload, checked by apps.datasets.services

    def delete_with_service(self, request: HttpRequest, obj: Any) -> str:
        return dataset_delete(dataset=obj, user=request.user, role=Role.OWNER).message


@admin.register(DatasetVersion)
class DatasetVersionAdmin(JobAdmin):
    list_display = [
        "dataset",
        "number",
        "organization",
        "status",
        "progress_text",
        "contents",
        "upload_size",
        "stored_size",
        "created_at",
    ]
    list_filter = ["status", "source_kind"]
    list_select_related = ["organization", "dataset"]
    search_fields = ["dataset__name", "organization__name", "source_name"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "dataset",
                    "number",
                    "organization",
                    "parent",
                    "source_kind",
                    "source_name",
                    "upload_size",
                    "stored_size",
                    "item_count",
                    "row_count",
                    "confirmed_at",
                ]
            },
        ),
        JobAdmin.job_fieldset,
        (
            _("Contents"),
            {
                "fields": [
                    "split_source",
                    "split_seed",
                    "split_ratios",
                    "class_counts",
                    "changes",
                    "skipped",
                    "schema",
                    "health",
                ],
                "classes": ["collapse"],
            },
        ),
    ]

    upload_size = size_display("source_size", _("uploaded size"))
    stored_size = size_display("stored_bytes", _("stored size"))

    @admin.display(description=_("contents"), ordering="item_count")
    def contents(self, version: DatasetVersion) -> str:
        """Images of an image version, rows of a table (one column, so the list fits 1366 px)."""
        if version.row_count and not version.item_count:
            return ngettext("%(n)d row", "%(n)d rows", version.row_count) % {"n": version.row_count}
        count = version.item_count
        return ngettext("%(n)d image", "%(n)d images", count) % {"n": count}


ITEM_FIELDS = (
    "original_name",
    "label",
    "split",
    "version",
    "organization",
    "original_format",
    "upload_size",
    "width",
    "height",
    "sha256",
    "stored_file",
    "file_offset",
    "file_length",
)


@admin.register(DatasetItem)
class DatasetItemAdmin(ViewOnlyMixin, TenantModelAdmin):
    list_display = ["original_name", "label", "split", "version", "organization", "upload_size"]
    list_filter = ["split", "original_format"]
    list_select_related = ["organization", "version__dataset"]
    search_fields = ["original_name", "label", "sha256"]
    fields = ITEM_FIELDS
    readonly_fields = ITEM_FIELDS

    upload_size = size_display("original_bytes", _("uploaded size"))
    stored_file = stored_name_display("file", _("file"))
