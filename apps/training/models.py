"""Model configurations, training runs (jobs), per-epoch metrics and trained model versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.jobs import JobModel
from apps.core.models import TenantModel


class ModelConfig(TenantModel):
    """A customer's model: a template, a dataset version and knob values."""

    name = models.CharField(_("name"), max_length=120)
    template = models.CharField(_("template"), max_length=32)
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="model_configs"
    )
    hyperparameters = models.JSONField(_("settings"), default=dict)
    #: weights the customer uploaded to start training from (image templates), checked to fit
    pretrained_weights = models.FileField(_("pretrained weights"), max_length=500, blank=True)
    pretrained_weights_name = models.CharField(max_length=255, blank=True)
    pretrained_weights_bytes = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("model")
        verbose_name_plural = _("models")

    def __str__(self) -> str:
        return self.name

    @property
    def template_name(self) -> str:
        from apps.training.templates import TEMPLATES

        template = TEMPLATES.get(self.template)
        return str(template.name) if template else self.template


class TrainingRun(JobModel):
    model_config = models.ForeignKey(ModelConfig, on_delete=models.CASCADE, related_name="runs")
    #: the knob values this run used (the config may change later; the run does not)
    hyperparameters = models.JSONField(default=dict)
    epoch = models.PositiveIntegerField(default=0)
    total_epochs = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    train_loss = models.FloatField(null=True, blank=True)
    train_accuracy = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    val_accuracy = models.FloatField(null=True, blank=True)
    images_per_second = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    #: "gpu" or "cpu": the Celery queue the run was sent to
    queue = models.CharField(max_length=16, default="gpu")
    #: where it trained ("cuda" or "cpu"), and the GPU time it used over all attempts
    device = models.CharField(max_length=32, blank=True)
    gpu_seconds = models.FloatField(default=0.0)
    #: the last finished epoch the latest attempt continued from (0: started afresh)
    resumed_from_epoch = models.PositiveIntegerField(default=0)
    #: the stored checkpoint of the last finished epoch, while the run is unfinished
    checkpoint = models.CharField(max_length=500, blank=True)
    #: its size, counted against the storage quota (apps.datasets.storage); 0 without one
    checkpoint_bytes = models.BigIntegerField(default=0)
    #: a few lines per epoch and event, newest last; the run page shows the tail
    log = models.TextField(blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("training run")
        verbose_name_plural = _("training runs")

    def __str__(self) -> str:
        return f"{self.model_config.name} run {str(self.pk)[:8]}"


class EpochMetric(TenantModel):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="epochs")
    epoch = models.PositiveIntegerField()
    train_loss = models.FloatField()
    #: None for regression
    train_accuracy = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    val_accuracy = models.FloatField(null=True, blank=True)
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["run", "epoch"]
        constraints = [models.UniqueConstraint(fields=["run", "epoch"], name="unique_run_epoch")]


class ModelVersion(TenantModel):
    """The trained weights of one successful run, with its evaluation on the test split."""

    model_config = models.ForeignKey(ModelConfig, on_delete=models.CASCADE, related_name="versions")
    run = models.OneToOneField(TrainingRun, on_delete=models.CASCADE, related_name="model_version")
    number = models.PositiveIntegerField()
    file = models.FileField(max_length=500)
    #: the model file's size, counted against the storage quota (apps.datasets.storage)
    file_bytes = models.BigIntegerField(default=0)
    template = models.CharField(max_length=32)
    #: "image-classification" or "tabular-regression"
    task = models.CharField(max_length=32, default="image-classification")
    #: class names (classification); empty for regression
    labels = models.JSONField(default=list)
    #: image side in pixels (classification); 0 for regression
    input_size = models.PositiveIntegerField(default=0)
    #: regression: the table's schema as it was when the model trained (column types, roles,
    #: typical values), so a later change to the dataset's columns cannot change what the
    #: deployed model reads
    input_schema = models.JSONField(default=dict, blank=True)
    #: test accuracy (classification) or R² (regression): the leaderboard's headline score
    accuracy = models.FloatField(null=True, blank=True)
    #: workers.ml.metrics.Evaluation.to_dict() or RegressionEvaluation.to_dict(), plus "split";
    #: classification mistakes carry the dataset item's id as "item"
    evaluation = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model_config", "number"], name="unique_model_version")
        ]
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")

    def __str__(self) -> str:
        return f"{self.model_config.name} v{self.number}"
