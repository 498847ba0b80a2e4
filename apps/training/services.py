"""Writes for training: configure a model, start a run, execute it on a worker, store the result."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max

from apps.audit.services import audit_record
from apps.core.errors import InvalidInput, ServiceError
from apps.core.jobs import JobStatus, ProgressReporter, job_finish, job_run
from apps.datasets.models import DatasetItem, DatasetVersion, Split
from apps.tenants.models import Organization
from apps.training.models import EpochMetric, ModelConfig, ModelVersion, TrainingRun
from apps.training.templates import template_get


def _check_trainable(version: DatasetVersion) -> None:
    if not version.is_ready:
        raise InvalidInput(
            f"Dataset version {version} is not ready yet (status: {version.status}). Wait for "
            "ingestion to finish.",
            field="dataset_version",
        )
    blocking = [
        p["message"] for p in version.health.get("problems", []) if p.get("severity") == "blocking"
    ]
    if blocking:
        raise InvalidInput(
            f"Dataset version {version} cannot be trained on yet: {' '.join(blocking)}",
            field="dataset_version",
        )
    if len(version.class_counts) < 2:
        raise InvalidInput(
            f"Dataset version {version} has {len(version.class_counts)} class; a classifier "
            "needs at least 2. Add a folder of images for another class.",
            field="dataset_version",
        )


def model_config_create(
    *,
    organization: Organization,
    user: Any,
    name: str,
    template: str,
    dataset_version: DatasetVersion,
    hyperparameters: dict[str, Any] | None = None,
) -> ModelConfig:
    """Configure a model from a template on a ready dataset version, with validated knobs."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Name the model.", field="name")
    if len(name) > 120:
        raise InvalidInput("The model name is too long: 120 characters at most.", field="name")
    cleaned = template_get(template).clean(hyperparameters)
    _check_trainable(dataset_version)
    config = ModelConfig.unscoped.create(
        organization=organization,
        name=name,
        template=template,
        dataset_version=dataset_version,
        hyperparameters=cleaned,
        created_by=user,
    )
    audit_record(organization=organization, actor=user, action="model.create", target=config)
    return config


def training_run_start(*, model_config: ModelConfig, user: Any) -> TrainingRun:
    """Queue a training run of `model_config`; a worker of the gpu queue picks it up."""
    _check_trainable(model_config.dataset_version)
    with transaction.atomic():
        run = TrainingRun.unscoped.create(
            organization=model_config.organization,
            model_config=model_config,
            hyperparameters=model_config.hyperparameters,
            total_epochs=int(model_config.hyperparameters.get("epochs", 0)),
            created_by=user,
            message="Waiting for a worker",
        )
        audit_record(
            organization=model_config.organization,
            actor=user,
            action="training_run.start",
            target=run,
        )
        transaction.on_commit(lambda: enqueue_training(run.pk))
    return run


def enqueue_training(run_id: uuid.UUID) -> None:
    from workers.tasks.training import training_run_execute_task

    training_run_execute_task.delay(str(run_id))


@contextlib.contextmanager
def _local_files(names: list[str]) -> Iterator[dict[str, Path]]:
    """Local paths for stored files: the files themselves on local storage, copies otherwise."""
    try:
        yield {name: Path(default_storage.path(name)) for name in names}
        return
    except NotImplementedError:
        pass
    folder = Path(tempfile.mkdtemp(prefix="lepton-data-"))
    try:
        paths: dict[str, Path] = {}
        for name in names:
            target = folder / uuid.uuid4().hex
            with default_storage.open(name, "rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            paths[name] = target
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def training_run_execute(*, run_id: Any) -> TrainingRun | None:
    """Train a queued run on this worker and store its model version and evaluation.

    Safe to run twice (the row is claimed first); raises JobBusy while another live worker
    holds the run. Progress is written to the run's row about once per
    LEPTON_PROGRESS_INTERVAL seconds.
    """
    # The trainer refuses bad input (an empty split, an unreadable image) with ValueError.
    return job_run(
        TrainingRun, run_id, _train, what="Training", expected=(ServiceError, ValueError)
    )


def _train(run: TrainingRun) -> None:
    import torch

    from workers.ml.data import LabeledImage
    from workers.ml.trainer import Progress, TrainConfig, train_classifier

    torch.set_num_threads(settings.LEPTON_TORCH_THREADS)

    config = run.model_config
    version = config.dataset_version
    labels = version.labels
    index = {label: i for i, label in enumerate(labels)}
    items = list(DatasetItem.objects.filter(version=version).values_list("file", "label", "split"))
    reporter = ProgressReporter(run)
    reporter.report(force=True, message="Loading images", progress=0.0)
    train_config = TrainConfig(template=config.template, **run.hyperparameters)

    def on_progress(progress: Progress) -> None:
        reporter.report(
            force=progress.phase == "done",
            progress=min(progress.fraction, 0.999),
            epoch=progress.epoch,
            total_epochs=progress.epochs,
            step=progress.step,
            total_steps=progress.total_steps,
            train_loss=progress.train_loss,
            train_accuracy=progress.train_accuracy,
            val_loss=progress.val_loss,
            val_accuracy=progress.val_accuracy,
            images_per_second=progress.images_per_second,
            message=(
                "Evaluating on the test split"
                if progress.phase == "evaluate"
                else f"Epoch {progress.epoch} of {progress.epochs}"
            ),
        )

    with (
        _local_files([name for name, _, _ in items]) as paths,
        tempfile.TemporaryDirectory(prefix="lepton-run-") as output_dir,
    ):
        by_split: dict[str, list[LabeledImage]] = {s: [] for s in Split.values}
        for name, label, split in items:
            by_split[split].append(LabeledImage(path=paths[name], label=index[label]))
        result = train_classifier(
            config=train_config,
            labels=labels,
            train=by_split[Split.TRAIN],
            validation=by_split[Split.VALIDATION],
            test=by_split[Split.TEST],
            output_dir=Path(output_dir),
            on_progress=on_progress,
            device=settings.LEPTON_TRAIN_DEVICE or None,
        )
        _store_result(run, result)


def _store_result(run: TrainingRun, result: Any) -> ModelVersion:
    config = run.model_config
    with transaction.atomic():
        number = (config.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        model_version = ModelVersion(
            organization=run.organization,
            model_config=config,
            run=run,
            number=number,
            template=config.template,
            labels=list(result.labels),
            input_size=result.input_size,  # what the trainer used, not what was asked
            accuracy=result.evaluation.accuracy,
            evaluation=result.evaluation.to_dict() | {"split": result.evaluation_split},
        )
        path = f"orgs/{run.organization_id}/models/{config.pk}/v{number}-{run.pk}.pt"
        with open(result.bundle_path, "rb") as handle:
            model_version.file.save(path, File(handle), save=False)
        model_version.save()
        EpochMetric.unscoped.bulk_create(
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
                for epoch in result.history
            ]
        )
        job_finish(
            run,
            status=JobStatus.SUCCEEDED,
            message=f"Done: test accuracy {result.evaluation.accuracy:.1%}",
            device=result.device,
            images_per_second=result.images_per_second,
            epoch=len(result.history),
        )
    return model_version
