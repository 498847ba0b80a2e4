from django.contrib import admin

from apps.core.admin import TenantModelAdmin
from apps.training.models import ModelConfig, ModelVersion, TrainingRun


@admin.register(ModelConfig)
class ModelConfigAdmin(TenantModelAdmin):
    list_display = ["name", "organization", "template", "dataset_version", "created_at"]
    search_fields = ["name", "organization__name"]


@admin.register(TrainingRun)
class TrainingRunAdmin(TenantModelAdmin):
    list_display = [
        "model_config",
        "organization",
        "status",
        "progress",
        "epoch",
        "queue",
        "device",
        "gpu_seconds",
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "queue", "device"]


@admin.register(ModelVersion)
class ModelVersionAdmin(TenantModelAdmin):
    list_display = ["model_config", "number", "organization", "task", "accuracy", "created_at"]
    list_filter = ["task"]
