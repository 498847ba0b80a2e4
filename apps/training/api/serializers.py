from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from apps.core.fields import ScopedPrimaryKeyRelatedField
from apps.datasets.models import DatasetVersion
from apps.training.models import EpochMetric, ModelConfig, ModelVersion, TrainingRun
from apps.training.templates import TEMPLATES


class ModelConfigSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelConfig
        fields = ["id", "name", "template", "dataset_version", "hyperparameters", "created_at"]
        read_only_fields = fields


class ModelConfigCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=500)
    template = serializers.ChoiceField(choices=sorted(TEMPLATES))
    dataset_version = ScopedPrimaryKeyRelatedField(DatasetVersion)
    hyperparameters = serializers.DictField(
        required=False,
        default=dict,
        help_text="Knob values by name; see GET /api/v1/templates/ for names, ranges, defaults.",
    )
    start_training = serializers.BooleanField(
        required=False, default=False, help_text="Queue a training run right away."
    )


class EpochMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = EpochMetric
        fields = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"]
        read_only_fields = fields


class TrainingRunSerializer(serializers.ModelSerializer):
    epochs = EpochMetricSerializer(many=True, read_only=True)
    model_version = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "model_config",
            "status",
            "progress",
            "message",
            "error",
            "hyperparameters",
            "epoch",
            "total_epochs",
            "step",
            "total_steps",
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "images_per_second",
            "device",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "epochs",
            "model_version",
        ]
        read_only_fields = fields

    def get_model_version(self, run: TrainingRun) -> str | None:
        # The view selects the reverse one-to-one with the run, so this is no extra query.
        try:
            return str(run.model_version.pk)
        except ObjectDoesNotExist:
            return None


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model_config",
            "run",
            "number",
            "template",
            "labels",
            "input_size",
            "accuracy",
            "evaluation",
            "created_at",
        ]
        read_only_fields = fields
