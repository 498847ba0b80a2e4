"""Training on the worker: the work function of the training job kind (apps.training.jobs).

The worker that claims a run trains through the ML core (workers.ml) and writes progress back
about once a second; after every epoch it stores a checkpoint through the storage API, so a
worker killed mid-run costs at most that epoch: the run is delivered again (acks late, or the
reaper), the next worker downloads the checkpoint and continues. A run is given up after
the kind's max_attempts claims. Cancelling (apps.training.services) marks the row; the
cancellation check here notices it before the next step.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext

from apps.analytics.services import usage_record_training
from apps.core.errors import InvalidInput, QuotaExceeded
from apps.core.job_registry import job_execute
from apps.core.jobs import JobStatus, job_finish
from apps.datasets.models import DatasetItem, Split
from apps.datasets.storage import storage_quota_check
from apps.training.jobs import TRAIN
from apps.training.models import EpochMetric, ModelVersion, TrainingRun
from apps.training.run_session import RunSession, local_files
from apps.training.services import run_log_append, stored_delete
from apps.training.templates import (
    TABULAR_REGRESSION,
    Template,
    template_get,
)

logger = logging.getLogger(__name__)


def training_run_execute(*, run_id: Any) -> TrainingRun | None:
    """Train a queued run on this worker and store its model version and evaluation.

    What the training task runs. Safe to run twice (the row is claimed first); raises JobBusy
    while another live worker holds the run. Continues from the run's stored checkpoint when an
    earlier attempt left one.
    """
    return job_execute(TRAIN, run_id)


def train_work(run: TrainingRun) -> None:
    """The work function of a training job: train the claimed run, store what it made."""
    import torch

    from workers.ml.loop import TrainingCancelled

    torch.set_num_threads(settings.LEPTON_TORCH_THREADS)
    template = template_get(run.model_config.template)
    if run.attempts > 1:
        run_log_append(
            run,
            f"Attempt {run.attempts} of {TRAIN.max_attempts}: the previous worker stopped "
            f"({run.message or 'no message'}).",
        )
    tabular = template.task == TABULAR_REGRESSION
    loading = "Loading the table" if tabular else "Loading images"
    with tempfile.TemporaryDirectory(prefix="lepton-run-") as workdir:
        session = RunSession(run, Path(workdir))
        session.reporter.report(force=True, message=loading, eta_seconds=None)
        if session.resume:
            run_log_append(run, "Continuing from the last stored checkpoint.")
        try:
            if tabular:
                _train_regressor(run, template, session)
            else:
                _train_classifier(run, template, session)
        except TrainingCancelled:
            _checkpoint_drop(run, gpu_seconds=session.gpu_seconds())
            logger.info("run %s cancelled", run.pk)
        except QuotaExceeded:
            # The run fails with the quota's message; nothing will resume from its checkpoint.
            _checkpoint_drop(run, gpu_seconds=session.gpu_seconds())
            raise
        except torch.OutOfMemoryError:
            raise InvalidInput(
                f"The {'GPU' if session.on_gpu else 'worker'} ran out of memory at batch size "
                f"{run.hyperparameters.get('batch_size')}. Lower the batch size or the input "
                "size, then train again."
            )


def _checkpoint_drop(run: TrainingRun, *, gpu_seconds: float) -> None:
    """Delete the run's stored checkpoint: the run will not continue from it."""
    stored_delete(TrainingRun.objects.get(pk=run.pk).checkpoint)
    TrainingRun.objects.filter(pk=run.pk).update(
        checkpoint="", checkpoint_bytes=0, gpu_seconds=gpu_seconds
    )


def _device() -> str | None:
    return settings.LEPTON_TRAIN_DEVICE or None


def _train_classifier(run: TrainingRun, template: Template, session: RunSession) -> None:
    from workers.ml.device import pick_device
    from workers.ml.trainer import train_classifier

    version = run.model_config.dataset_version
    labels = version.labels
    index = {label: i for i, label in enumerate(labels)}
    # Ordered, so the evaluation's mistake indices can be mapped back to items.
    items = list(
        DatasetItem.objects.filter(version=version)
        .order_by("split", "label", "original_name", "pk")
        .values_list("pk", "file", "file_offset", "file_length", "original_name", "label", "split")
    )
    weights = run.model_config.pretrained_weights.name
    session.device = pick_device(_device()).type
    names = list(dict.fromkeys(item[1] for item in items))  # a pack holds many items
    with local_files(names + ([weights] if weights else [])) as paths:
        config = template.config(
            run.hyperparameters, pretrained_path=str(paths[weights]) if weights else None
        )
        if weights and not session.resume:
            run_log_append(
                run,
                f"Starting from the uploaded weights {run.model_config.pretrained_weights_name}.",
            )
        by_split, ids = _images_by_split(items, paths, index)
        result = train_classifier(
            config=config,
            labels=labels,
            train=by_split[Split.TRAIN],
            validation=by_split[Split.VALIDATION],
            test=by_split[Split.TEST],
            device=_device(),
            **session.trainer_callbacks(),
        )
    evaluation = result.evaluation.to_dict() | {"split": result.evaluation_split}
    evaluated = ids[result.evaluation_split]
    for mistake in evaluation["mistakes"]:
        mistake["item"] = evaluated[mistake["index"]]
    _store_result(
        run,
        session,
        result,
        task=template.task,
        labels=list(result.labels),
        input_size=result.input_size,
        score=result.evaluation.accuracy,
        evaluation=evaluation,
        throughput=result.images_per_second,
        summary=f"test accuracy {result.evaluation.accuracy:.1%}",
    )


def _images_by_split(
    items: list[tuple], paths: dict[str, Path], index: dict[str, int]
) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
    """The trainer's images per split, and the dataset item ids in the same order (so the
    evaluation's mistakes can name their items)."""
    from workers.ml.data import LabeledImage

    by_split: dict[str, list[Any]] = {s: [] for s in Split.values}
    ids: dict[str, list[str]] = {s: [] for s in Split.values}
    for pk, name, offset, length, original_name, label, split in items:
        by_split[split].append(
            LabeledImage(
                path=paths[name],
                label=index[label],
                offset=offset,
                length=length,
                name=original_name,
            )
        )
        ids[split].append(str(pk))
    return by_split, ids


def tabular_features(schema: dict[str, Any]) -> dict[str, str]:
    """The feature columns of a tabular version's schema, with the kind the trainer reads them
    as (booleans become the numbers 0 and 1)."""
    return {
        column["name"]: "categorical" if column["type"] == "categorical" else "numeric"
        for column in schema["columns"]
        if column["role"] == "feature" and column["type"] in ("numeric", "categorical", "boolean")
    }


def tabular_records(schema: dict[str, Any], rows: Iterator[dict[str, str]]) -> Iterator[dict]:
    """Rows of the canonical table as the trainer reads them: booleans as 1.0/0.0/None."""
    from workers.ml.cells import boolean_value

    booleans = [c["name"] for c in schema["columns"] if c["type"] == "boolean"]
    for row in rows:
        for name in booleans:
            if name in row:
                value = boolean_value(row[name] or "")
                row[name] = None if value is None else float(value)  # type: ignore[assignment]
        yield row


def _train_regressor(run: TrainingRun, template: Template, session: RunSession) -> None:
    from workers.ml.device import pick_device
    from workers.ml.tabular import TabularData, train_regressor

    version = run.model_config.dataset_version
    schema = version.schema
    features = tabular_features(schema)
    if not features or not schema.get("target"):
        raise InvalidInput(
            "The table has no feature columns or no target; confirm its columns on the dataset "
            "version's page.",
            field="dataset_version",
        )
    with version.data_file.open("rb") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        rows = list(tabular_records(schema, csv.DictReader(text)))
        text.detach()
    data = TabularData.from_records(rows, features=features, target=schema["target"])
    config = template.config(run.hyperparameters)
    session.device = pick_device(_device()).type
    result = train_regressor(
        config=config,
        data=data,
        device=_device(),
        **session.trainer_callbacks(),
    )
    evaluation = result.evaluation.to_dict() | {
        "split": result.evaluation_split,
        "skipped_rows": result.skipped_rows,
    }
    names = [c["name"] for c in schema["columns"] if c["role"] == "id"]
    for pair in evaluation["pairs"]:
        pair["row"] = pair["index"] + 2  # as a spreadsheet counts: the header is row 1
        if names:
            pair["name"] = rows[pair["index"]].get(names[0], "")
    _store_result(
        run,
        session,
        result,
        task=template.task,
        labels=[],
        input_size=0,
        score=result.evaluation.r2,
        evaluation=evaluation,
        throughput=result.rows_per_second,
        summary=f"R² {result.evaluation.r2:.3f}, MAE {result.evaluation.mae:.4g}",
        input_schema=schema,
    )


def _store_result(
    run: TrainingRun,
    session: RunSession,
    result: Any,
    *,
    task: str,
    labels: list[str],
    input_size: int,
    score: float,
    evaluation: dict[str, Any],
    throughput: float,
    summary: str,
    input_schema: dict[str, Any] | None = None,
) -> ModelVersion | None:
    """Keep the trained model as the config's next version, exactly once per run.

    Raises QuotaExceeded when the model file would take the organization over its storage
    quota (counting the run's checkpoint, deleted once the model is stored, as gone)."""
    config = run.model_config
    gpu_seconds = session.gpu_seconds()
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != JobStatus.RUNNING:  # cancelled while evaluating
            return None
        existing = ModelVersion.objects.filter(run=run).first()
        if existing is not None:
            return existing
        number = (config.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        model_version = ModelVersion(
            organization=run.organization,
            model_config=config,
            run=run,
            number=number,
            template=config.template,
            task=task,
            labels=labels,
            input_size=input_size,  # what the trainer used, not what was asked
            accuracy=score,
            evaluation=evaluation,
            input_schema=input_schema or {},
        )
        size = os.path.getsize(result.bundle_path)
        storage_quota_check(
            organization=run.organization,
            adding_bytes=size - locked.checkpoint_bytes,
            what=gettext("The trained model's file"),
        )
        model_version.file_bytes = size
        path = f"orgs/{run.organization_id}/models/{config.pk}/v{number}-{run.pk}.pt"
        with open(result.bundle_path, "rb") as handle:
            model_version.file.save(path, File(handle), save=False)
        model_version.save()
        _epochs_replace(run, result.history)
        checkpoint = locked.checkpoint
        job_finish(
            run,
            status=JobStatus.SUCCEEDED,
            message=f"Done: {summary}",
            device=result.device,
            gpu_seconds=gpu_seconds,
            images_per_second=throughput,
            epoch=len(result.history),
            eta_seconds=0.0,
            resumed_from_epoch=result.resumed_from_epoch,
            checkpoint="",
            checkpoint_bytes=0,
        )
        usage_record_training(run=run, device=result.device, gpu_seconds=gpu_seconds)
        transaction.on_commit(lambda: stored_delete(checkpoint))
    run_log_append(run, f"Done: {summary}. Stored as version {number}.")
    return model_version


def _epochs_replace(run: TrainingRun, history: list[Any]) -> None:
    """The final history is authoritative (exact epoch times, epochs of earlier attempts)."""
    EpochMetric.objects.filter(run=run).delete()
    EpochMetric.objects.bulk_create(
        [
            EpochMetric(
                organization=run.organization,
                run=run,
                epoch=epoch.epoch,
                train_loss=epoch.train_loss,
                train_accuracy=epoch.train_accuracy,
                val_loss=epoch.val_loss,
                val_accuracy=epoch.val_accuracy,
                seconds=epoch.seconds,
            )
            for epoch in history
        ]
    )
