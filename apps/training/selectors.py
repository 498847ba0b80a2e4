"""Reads for training: queue positions, log tails and the leaderboard of a dataset's runs."""

from __future__ import annotations

from typing import Any

from apps.core.job_registry import job_queue_position
from apps.datasets.models import Dataset
from apps.training.jobs import TRAIN
from apps.training.models import ModelVersion, TrainingRun
from apps.training.templates import TEMPLATES
from workers.ml.tasks import TABULAR_REGRESSION


def run_queue_position(run: TrainingRun) -> int | None:
    """1 for the next run its queue's workers will take, 2 after that, ...; None unless queued.

    Counts every organization's queued runs on the same queue (only the number is shown), in
    the order they were queued: the job layer's count, which alone may look across tenants.
    """
    return job_queue_position(TRAIN, run)


def run_log_tail(run: TrainingRun, lines: int = 50) -> list[str]:
    """The run's last `lines` log lines, oldest first."""
    return run.log.splitlines()[-lines:]


def dataset_leaderboard(dataset: Dataset) -> dict[str, Any]:
    """Every trained model version of ``dataset`` (any of its versions), best first.

    Classifiers are ranked by test accuracy, then macro F1; regressors by R², then MAE. Each
    row says which dataset version, template, settings and device produced it, so runs can be
    compared side by side. The caller's tenant scope applies.
    """
    versions = (
        ModelVersion.objects.filter(model_config__dataset_version__dataset=dataset)
        .select_related("model_config__dataset_version", "run")
        .order_by("-created_at")
    )
    rows = [_leaderboard_row(version) for version in versions]
    if dataset.kind == "tabular":
        rows.sort(key=lambda r: (-(r["r2"] or -1e9), r["mae"] or 0.0))
        metric = "r2"
    else:
        rows.sort(key=lambda r: (-(r["accuracy"] or 0.0), -(r["macro_f1"] or 0.0)))
        metric = "accuracy"
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return {"dataset": str(dataset.pk), "metric": metric, "entries": rows}


#: the scores a leaderboard row carries, by task
_CLASSIFIER_SCORES = (
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
    "count",
)
_REGRESSOR_SCORES = ("r2", "mae", "rmse", "count")


def _leaderboard_row(version: ModelVersion) -> dict[str, Any]:
    """What made a model version (dataset version, template, settings, device), its scores."""
    evaluation = version.evaluation
    run = version.run
    template = TEMPLATES.get(version.template)
    row: dict[str, Any] = {
        "model_version": str(version.pk),
        "model": str(version.model_config_id),
        "model_name": version.model_config.name,
        "number": version.number,
        "run": str(run.pk),
        "template": version.template,
        "template_name": str(template.name) if template else version.template,
        "dataset_version": version.model_config.dataset_version.number,
        "task": version.task,
        "score": version.accuracy,
        "epochs": run.epoch,
        "hyperparameters": run.hyperparameters,
        "device": run.device,
        "gpu_seconds": run.gpu_seconds,
        "samples_per_second": run.images_per_second,
        "seconds": (
            (run.finished_at - run.started_at).total_seconds()
            if run.finished_at and run.started_at
            else None
        ),
        "evaluated_on": evaluation.get("split", "test"),
        "created_at": version.created_at,
    }
    scores = _REGRESSOR_SCORES if version.task == TABULAR_REGRESSION else _CLASSIFIER_SCORES
    return row | {k: evaluation.get(k) for k in scores}
