"""Models, runs and trained versions in the admin.

A model's name is staff's to fix; its template, dataset and settings were validated when it was
made and its runs used them, so they stay. Runs are jobs and trained versions their results:
view-only, with a cancel action that goes through the service like the run page's button.
Deleting a model goes through apps.training.deletion (files freed, refused while a run is
queued or training, or a version is deployed).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.admin import (
    JobAdmin,
    ServiceDeleteAdmin,
    TenantModelAdmin,
    ViewOnlyMixin,
    duration_display,
    humanized,
    percent_display,
    preformatted,
    size_display,
    stored_name_display,
    table,
)
from apps.core.errors import ServiceError
from apps.core.text import human_duration, human_percent
from apps.tenants.models import Role
from apps.training.deletion import model_config_delete
from apps.training.models import EpochMetric, ModelConfig, ModelVersion, TrainingRun
from apps.training.services import training_run_cancel

CONFIG_FIELDS = (
    "name",
    "organization",
    "template",
    "dataset_version",
    "hyperparameters",
    "pretrained_weights_name",
    "weights",
    "created_by",
    "created_at",
)


@admin.register(ModelConfig)
class ModelConfigAdmin(ServiceDeleteAdmin):
    list_display = ["name", "organization", "template", "dataset_version", "weights", "created_at"]
    list_filter = ["template"]
    list_select_related = ["organization", "dataset_version__dataset"]
    search_fields = ["name", "organization__name"]
    fields = CONFIG_FIELDS
    readonly_fields = CONFIG_FIELDS[1:]

    weights = size_display("pretrained_weights_bytes", _("pretrained weights"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by apps.training.services.model_config_create, which validates

    def delete_with_service(self, request: HttpRequest, obj: Any) -> str:
        return model_config_delete(model_config=obj, user=request.user, role=Role.OWNER)


@admin.register(TrainingRun)
class TrainingRunAdmin(JobAdmin):
    # Fits 1366 px beside the filters; the epoch and the device are on the run's page.
    list_display = [
        "model_name",
        "organization",
        "status",
        "progress_text",
        "val_acc",
        "gpu_time",
        "attempts",
        "run_time",
        "created_at",
    ]
    list_filter = ["status", "queue", "device"]
    list_select_related = ["organization", "model_config"]
    search_fields = ["model_config__name", "organization__name"]
    actions = ["cancel"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "model_config",
                    "organization",
                    "created_by",
                    "queue",
                    "device",
                    "gpu_time",
                    "hyperparameters",
                ]
            },
        ),
        JobAdmin.job_fieldset,
        (
            _("Training"),
            {
                "fields": [
                    "epochs",
                    "steps",
                    "train_loss",
                    "train_acc",
                    "val_loss",
                    "val_acc",
                    "speed",
                    "eta",
                    "resumed_from_epoch",
                    "checkpoint",
                    "cancelled_by",
                    "epoch_table",
                ]
            },
        ),
        (_("Log"), {"fields": ["log_text"]}),
    ]

    train_acc = percent_display("train_accuracy", _("train accuracy"))
    val_acc = percent_display("val_accuracy", _("val. accuracy"))
    gpu_time = duration_display("gpu_seconds", _("GPU time"))
    eta = duration_display("eta_seconds", _("time left"))
    speed = humanized("images_per_second", _("speed"), lambda v: _("%(n).0f images/s") % {"n": v})

    @admin.display(description=_("model"), ordering="model_config__name")
    def model_name(self, run: TrainingRun) -> str:
        return run.model_config.name

    @admin.display(description=_("epoch"), ordering="epoch")
    def epochs(self, run: TrainingRun) -> str:
        return f"{run.epoch} / {run.total_epochs}"

    @admin.display(description=_("step"), ordering="step")
    def steps(self, run: TrainingRun) -> str:
        return f"{run.step} / {run.total_steps}"

    @admin.display(description=_("epochs"))
    def epoch_table(self, run: TrainingRun) -> str:
        """Each finished epoch's numbers, as the run page's curves plot them."""
        empty = self.get_empty_value_display()

        def cell(value: float | None, show: Any) -> str:
            return empty if value is None else show(value)

        rows = [
            [
                epoch.epoch,
                cell(epoch.train_loss, lambda v: f"{v:.4f}"),
                cell(epoch.train_accuracy, human_percent),
                cell(epoch.val_loss, lambda v: f"{v:.4f}"),
                cell(epoch.val_accuracy, human_percent),
                human_duration(epoch.seconds),
            ]
            for epoch in EpochMetric.objects.for_organization(run.organization_id).filter(run=run)
        ]
        if not rows:
            return empty
        headers = [_("epoch"), _("train loss"), _("train accuracy"), _("val. loss")]
        return table([*headers, _("val. accuracy"), _("time")], rows)

    @admin.display(description=_("log"))
    def log_text(self, run: TrainingRun) -> str:
        return preformatted(run.log)

    @admin.action(description=_("Cancel the selected queued or running runs"))
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        cancelled = 0
        for run in queryset:
            try:
                # Platform staff act with an owner's powers (they may not be members).
                training_run_cancel(run=run, user=request.user, role=Role.OWNER)
            except ServiceError as error:
                self.message_user(request, f"{run}: {error.message}", messages.WARNING)
            else:
                cancelled += 1
        if cancelled:
            message = ngettext("Cancelled %(n)d run.", "Cancelled %(n)d runs.", cancelled)
            self.message_user(request, message % {"n": cancelled}, messages.SUCCESS)


@admin.register(ModelVersion)
class ModelVersionAdmin(ViewOnlyMixin, TenantModelAdmin):
    list_display = ["__str__", "organization", "task", "template", "score", "created_at"]
    list_filter = ["task", "template"]
    list_select_related = ["organization", "model_config"]
    search_fields = ["model_config__name", "organization__name"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "model_config",
                    "number",
                    "organization",
                    "run",
                    "task",
                    "template",
                    "score",
                    "input_size",
                    "stored_file",
                ]
            },
        ),
        (
            _("Evaluation and inputs"),
            {"fields": ["labels", "input_schema", "evaluation"], "classes": ["collapse"]},
        ),
    ]

    stored_file = stored_name_display("file", _("file"))

    @admin.display(description=_("test score"), ordering="accuracy")
    def score(self, version: ModelVersion) -> str | None:
        """Accuracy for classifiers, R² (which can be negative) for regressions."""
        if version.accuracy is None:
            return None
        if version.task == "tabular-regression":
            return f"R² {version.accuracy:.3f}"
        return human_percent(version.accuracy)
