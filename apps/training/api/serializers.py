from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from apps.core.fields import ScopedPrimaryKeyRelatedField
from apps.datasets.models import DatasetVersion
from apps.training.models import EpochMetric, ModelConfig, ModelVersion, TrainingRun
from apps.training.selectors import run_log_tail, run_queue_position


class ModelConfigSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelConfig
        fields = [
            "id",
            "name",
            "template",
            "dataset_version",
            "hyperparameters",
            "pretrained_weights_name",
            "pretrained_weights_bytes",
            "created_at",
        ]
        read_only_fields = fields


class ModelConfigCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=500)
    template = serializers.CharField(
        max_length=32, help_text="A template key from GET /api/v1/templates/."
    )
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
    queue_position = serializers.SerializerMethodField(
        help_text="While queued: 1 when the run is next on its queue. Otherwise null."
    )
    log_tail = serializers.SerializerMethodField(help_text="The last 50 lines of the run's log.")

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
            "eta_seconds",
            "queue",
            "queue_position",
            "device",
            "gpu_seconds",
            "attempts",
            "resumed_from_epoch",
            "log_tail",
            "created_at",
            "started_at",
            "finished_at",
            "epochs",
            "model_version",
        ]
        read_only_fields = fields

    def get_queue_position(self, run: TrainingRun) -> int | None:
        return run_queue_position(run)

    def get_log_tail(self, run: TrainingRun) -> list[str]:
        return run_log_tail(run)

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
            "task",
            "labels",
            "input_size",
            "accuracy",
            "evaluation",
            "created_at",
        ]
        read_only_fields = fields


class LeaderboardEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    model_version = serializers.UUIDField()
    model = serializers.UUIDField()
    model_name = serializers.CharField()
    number = serializers.IntegerField()
    run = serializers.UUIDField()
    template = serializers.CharField()
    template_name = serializers.CharField()
    dataset_version = serializers.IntegerField()
    task = serializers.CharField()
    score = serializers.FloatField(
        allow_null=True, help_text="Accuracy (classification) or R² (regression)."
    )
    accuracy = serializers.FloatField(required=False, allow_null=True)
    macro_f1 = serializers.FloatField(required=False, allow_null=True)
    weighted_f1 = serializers.FloatField(required=False, allow_null=True)
    macro_precision = serializers.FloatField(required=False, allow_null=True)
    macro_recall = serializers.FloatField(required=False, allow_null=True)
    weighted_precision = serializers.FloatField(required=False, allow_null=True)
    weighted_recall = serializers.FloatField(required=False, allow_null=True)
    r2 = serializers.FloatField(required=False, allow_null=True)
    mae = serializers.FloatField(required=False, allow_null=True)
    rmse = serializers.FloatField(required=False, allow_null=True)
    count = serializers.IntegerField(allow_null=True)
    epochs = serializers.IntegerField()
    hyperparameters = serializers.DictField()
    device = serializers.CharField()
    gpu_seconds = serializers.FloatField()
    samples_per_second = serializers.FloatField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)
    evaluated_on = serializers.CharField()
    created_at = serializers.DateTimeField()


class LeaderboardSerializer(serializers.Serializer):
    dataset = serializers.UUIDField()
    metric = serializers.ChoiceField(choices=["accuracy", "r2"])
    entries = LeaderboardEntrySerializer(many=True)


class WeightsUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A PyTorch state dict (torch.save(model.state_dict())) or a Lepton model file "
        "of the same template; read with weights_only, checked to fit before it is kept."
    )
