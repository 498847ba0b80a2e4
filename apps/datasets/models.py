"""Datasets, their immutable versions and the items (images) in each version."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.jobs import JobModel, JobStatus
from apps.core.models import TenantModel


class DatasetKind(models.TextChoices):
    IMAGE = "image", _("Images (classification)")
    TABULAR = "tabular", _("Table (market data)")


class Dataset(TenantModel):
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(
        _("kind"), max_length=16, choices=DatasetKind, default=DatasetKind.IMAGE
    )
    description = models.TextField(_("description"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")

    def __str__(self) -> str:
        return self.name


class DatasetVersion(JobModel):
    """One immutable version; its ingestion is a job (status, progress, message on the row)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    source = models.FileField(_("uploaded archive"), max_length=500, blank=True)
    source_name = models.CharField(_("uploaded file name"), max_length=255, blank=True)
    source_size = models.BigIntegerField(_("uploaded size (bytes)"), default=0)
    stored_bytes = models.BigIntegerField(_("stored size (bytes)"), default=0)
    item_count = models.PositiveIntegerField(_("images"), default=0)
    #: {label: {"train": n, "validation": n, "test": n, "total": n}}
    class_counts = models.JSONField(default=dict, blank=True)
    #: [{"path": entry name in the archive, "reason": why it was skipped}]
    skipped = models.JSONField(default=list, blank=True)
    #: the version this one was derived from (additions, removals, relabels)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    #: "zip" | "tar" | "images" | "csv" | "derived"
    source_kind = models.CharField(max_length=16, blank=True)
    #: "auto" (stratified from ratios and seed) or "manifest" (the manifest's split column)
    split_source = models.CharField(max_length=16, default="auto")
    split_seed = models.IntegerField(default=0)
    split_ratios = models.JSONField(default=dict, blank=True)
    #: the health report computed at ingestion (see apps.datasets.health)
    health = models.JSONField(default=dict, blank=True)
    #: what a derived version changed: {"added": n, "removed": n, "relabelled": n, ...}
    changes = models.JSONField(default=dict, blank=True)
    # --- tabular versions -------------------------------------------------------------------
    #: the canonical data (UTF-8, comma-separated CSV) of a tabular version
    data_file = models.FileField(max_length=500, blank=True)
    #: {"columns": [{"name", "type", "missing", "role", ...}], "target": name, ...}
    schema = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="unique_dataset_version")
        ]
        verbose_name = _("dataset version")
        verbose_name_plural = _("dataset versions")

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    @property
    def owner_id(self) -> Any:
        """Who may change the version as its maker (apps.core.permissions): whoever uploaded the
        dataset, whoever made this version of it."""
        return self.dataset.created_by_id

    @property
    def is_ready(self) -> bool:
        return self.status == JobStatus.SUCCEEDED

    @property
    def labels(self) -> list[str]:
        return sorted(self.class_counts)


class Split(models.TextChoices):
    TRAIN = "train", _("Train")
    VALIDATION = "validation", _("Validation")
    TEST = "test", _("Test")


class DatasetItem(TenantModel):
    """One image of a version.

    Its canonical PNG is `file` as a whole, or, when `file_offset` is set, the `file_length`
    bytes at that offset of `file`, a pack of the images decoded together at ingestion (see
    apps.datasets.canonical); the same for `thumbnail`. apps.datasets.stored reads either.
    """

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")
    file = models.FileField(max_length=500)
    file_offset = models.PositiveBigIntegerField(null=True, blank=True)
    file_length = models.PositiveBigIntegerField(null=True, blank=True)
    original_name = models.CharField(_("file name in the upload"), max_length=500)
    label = models.CharField(_("label"), max_length=200)
    split = models.CharField(_("split"), max_length=16, choices=Split, db_index=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    thumbnail = models.FileField(max_length=500, blank=True)
    thumbnail_offset = models.PositiveBigIntegerField(null=True, blank=True)
    thumbnail_length = models.PositiveBigIntegerField(null=True, blank=True)
    #: the format the customer uploaded (JPEG, PNG, ...) and its size in bytes
    original_format = models.CharField(max_length=16, blank=True)
    original_bytes = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["label", "original_name"]
        verbose_name = _("dataset item")
        verbose_name_plural = _("dataset items")

    def __str__(self) -> str:
        return f"{self.label}: {self.original_name}"
