"""Writes for training: configure a model, start, cancel and execute runs, store the result.

A run is a job row (apps.core.jobs). The worker that claims it trains through the ML core
(workers.ml) and writes progress back about once a second; after every epoch it stores a
checkpoint through the storage API, so a worker killed mid-run costs at most that epoch: the
run is delivered again (acks late, or the reaper), the next worker downloads the checkpoint and
continues. A run is given up after MAX_ATTEMPTS claims. Cancelling marks the row; the worker
notices within LEPTON_CANCEL_POLL_SECONDS and stops before its next step.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max, Sum, Value
from django.db.models.functions import Concat
from django.utils import timezone

from apps.analytics.services import usage_record_training
from apps.audit.services import audit_record
from apps.core.errors import (
    Conflict,
    InvalidInput,
    PayloadTooLarge,
    QuotaExceeded,
    ServiceError,
)
from apps.core.jobs import MAX_ATTEMPTS, JobStatus, ProgressReporter, job_finish, job_run
from apps.core.text import human_size
from apps.datasets.models import DatasetItem, DatasetKind, DatasetVersion, Split
from apps.datasets.services import organization_storage_used
from apps.tenants.models import Organization
from apps.training.models import EpochMetric, ModelConfig, ModelVersion, TrainingRun
from apps.training.templates import (
    IMAGE_CLASSIFICATION,
    TABULAR_REGRESSION,
    TEMPLATES,
    Template,
    template_get,
)

logger = logging.getLogger(__name__)

#: the run's log keeps this many lines (older ones are dropped when it is written)
LOG_LINES = 200


def _check_trainable(version: DatasetVersion, template: Template) -> None:
    """Refuse, with what to do instead, a version this template cannot train on yet."""
    kind = version.dataset.kind
    if kind != template.dataset_kind:
        # The catalogue lists each template once ("leptonnet" is LeptonNet-S).
        fitting = ", ".join(key for key, other in TEMPLATES.items() if other.dataset_kind == kind)
        what = "images" if template.dataset_kind == DatasetKind.IMAGE else "tables of market data"
        raise InvalidInput(
            f"Template {template.key} trains on {what}, but dataset {version.dataset} is "
            f"{'a table' if kind == DatasetKind.TABULAR else 'a set of images'}. "
            f"Choose one of: {fitting}.",
            field="template",
        )
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
    if kind == DatasetKind.TABULAR:
        if version.confirmed_at is None:
            raise InvalidInput(
                f"Confirm the columns and the target of dataset version {version} first: open "
                "the version's page, check the detected types and target, and press Confirm.",
                field="dataset_version",
            )
        return
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
    """Configure a model from a template on a ready dataset version, with validated knobs.

    Every knob is stored, the defaults filled in, so a run can always be repeated exactly.

    Raises:
        InvalidInput: naming the field, for a bad name, template, knob value or dataset version.
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Name the model.", field="name")
    if len(name) > 120:
        raise InvalidInput("The model name is too long: 120 characters at most.", field="name")
    chosen = template_get(template)
    cleaned = chosen.clean(hyperparameters)
    _check_trainable(dataset_version, chosen)
    config = ModelConfig.all_tenants.create(
        organization=organization,
        name=name,
        template=chosen.key,
        dataset_version=dataset_version,
        hyperparameters=cleaned,
        created_by=user,
    )
    audit_record(organization=organization, actor=user, action="model.create", target=config)
    return config


def model_config_weights_attach(
    *, model_config: ModelConfig, upload: UploadedFile, user: Any
) -> ModelConfig:
    """Keep weights the customer uploaded; the model's runs start from them.

    The file must be a PyTorch state dict (a torchvision ``.pth``) or a Lepton model file of the
    same template; it is read with ``weights_only`` (no code in it can run) and checked to fit
    the template before it is stored, replacing earlier uploaded weights.

    Raises:
        InvalidInput: for a table template, an empty or unreadable file, or weights that do
            not fit, saying which tensors.
        PayloadTooLarge: over LEPTON_MAX_WEIGHTS_MB.
        QuotaExceeded: over the organization's storage quota.
    """
    from workers.ml.architectures import build_model, load_pretrained

    template = template_get(model_config.template)
    name = Path(upload.name or "weights.pth").name[:255]
    if template.task != IMAGE_CLASSIFICATION:
        raise InvalidInput(
            f"Template {template.key} learns from a table and starts from scratch; pretrained "
            "weights only apply to image templates.",
            field="file",
        )
    limit = settings.LEPTON_MAX_WEIGHTS_BYTES
    if upload.size > limit:
        raise PayloadTooLarge(
            f"'{name}' is {human_size(upload.size)}; weights files are limited to "
            f"{human_size(limit)}.",
            field="file",
        )
    if upload.size == 0:
        raise InvalidInput(f"'{name}' is empty.", field="file")
    organization = model_config.organization
    used = organization_storage_used(organization=organization) + (
        ModelConfig.all_tenants.filter(organization=organization).aggregate(
            n=Sum("pretrained_weights_bytes")
        )["n"]
        or 0
    )
    if used + upload.size > organization.storage_quota_bytes:
        raise QuotaExceeded(
            f"'{name}' would take your organization's storage over its quota of "
            f"{human_size(organization.storage_quota_bytes)}. Delete datasets you no longer "
            "need or ask a platform admin for a larger quota.",
            field="file",
        )
    labels = model_config.dataset_version.labels
    with tempfile.NamedTemporaryFile(prefix="lepton-weights-", suffix=".pt") as local:
        for chunk in upload.chunks():
            local.write(chunk)
        local.flush()
        try:
            load_pretrained(
                build_model(template.key, num_classes=max(2, len(labels))),
                template.key,
                Path(local.name),
            )
        except ValueError as exc:
            message = str(exc).replace(Path(local.name).name, f"'{name}'")
            raise InvalidInput(
                f"{message}. Upload a state dict saved with torch.save(model.state_dict()) "
                f"from a {template.name}, or a model file of this template.",
                field="file",
            )
        local.seek(0)
        previous = model_config.pretrained_weights.name
        stored = default_storage.save(
            f"orgs/{organization.pk}/weights/{model_config.pk}-{uuid.uuid4().hex}.pt", File(local)
        )
    ModelConfig.all_tenants.filter(pk=model_config.pk).update(
        pretrained_weights=stored,
        pretrained_weights_name=name,
        pretrained_weights_bytes=upload.size,
        updated_at=timezone.now(),
    )
    _delete_stored(previous)
    audit_record(
        organization=organization,
        actor=user,
        action="model.weights",
        target=model_config,
        data={"file": name, "bytes": upload.size},
    )
    model_config.refresh_from_db()
    return model_config


def training_run_start(*, model_config: ModelConfig, user: Any) -> TrainingRun:
    """Queue a training run of `model_config` on its template's queue (gpu, or cpu for tables)."""
    template = template_get(model_config.template)
    _check_trainable(model_config.dataset_version, template)
    with transaction.atomic():
        run = TrainingRun.all_tenants.create(
            organization=model_config.organization,
            model_config=model_config,
            hyperparameters=model_config.hyperparameters,
            total_epochs=int(model_config.hyperparameters.get("epochs", 0)),
            queue=template.queue,
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
    """Send the run's task to its queue (again, for the reaper: the claim makes that safe)."""
    from workers.tasks.training import training_run_execute_task

    queue = TrainingRun.all_tenants.filter(pk=run_id).values_list("queue", flat=True).first()
    training_run_execute_task.apply_async(args=[str(run_id)], queue=queue or "gpu")


def training_run_cancel(*, run: TrainingRun, user: Any) -> TrainingRun:
    """Cancel a queued or running run.

    A queued run is never started; a running one stops before its next training step, once its
    worker sees the new state (within LEPTON_CANCEL_POLL_SECONDS), and stores no model version.

    Raises:
        Conflict: the run already finished.
    """
    with transaction.atomic():
        locked = TrainingRun.all_tenants.select_for_update().get(pk=run.pk)
        if locked.is_finished:
            raise Conflict(
                f"The run already ended ({locked.get_status_display().lower()}); only a queued "
                "or running run can be cancelled.",
                field="status",
            )
        who = getattr(user, "email", "") or "an administrator"
        job_finish(
            locked,
            status=JobStatus.CANCELLED,
            message=f"Cancelled by {who} at step {locked.step} of {locked.total_steps}",
            cancelled_by=user if getattr(user, "pk", None) else None,
            eta_seconds=None,
        )
        _log(locked, f"Cancelled by {who}.")
        audit_record(
            organization=locked.organization,
            actor=user,
            action="training_run.cancel",
            target=locked,
        )
        checkpoint = locked.checkpoint
        transaction.on_commit(lambda: _delete_stored(checkpoint))
    locked.refresh_from_db()
    return locked


def training_run_execute(*, run_id: Any) -> TrainingRun | None:
    """Train a queued run on this worker and store its model version and evaluation.

    Safe to run twice (the row is claimed first); raises JobBusy while another live worker
    holds the run. Continues from the run's stored checkpoint when an earlier attempt left one.
    """
    # The trainers refuse bad input (an empty split, an unreadable image) with ValueError.
    return job_run(
        TrainingRun, run_id, _train, what="Training", expected=(ServiceError, ValueError)
    )


# --- on the worker ---------------------------------------------------------------------------


def _log(run: TrainingRun, line: str) -> None:
    """Append a time-stamped line to the run's log (one UPDATE; the page shows the tail)."""
    stamp = timezone.now().strftime("%H:%M:%S")
    TrainingRun.all_tenants.filter(pk=run.pk).update(log=Concat("log", Value(f"{stamp} {line}\n")))


def _delete_stored(name: str) -> None:
    if name:
        with contextlib.suppress(OSError, NotImplementedError):
            default_storage.delete(name)


class _CancelCheck:
    """``should_stop`` for the trainers: reads the run's status at most every `interval` s.

    Checked before every step, so it must be cheap: between reads it answers from memory.
    """

    def __init__(self, run: TrainingRun, interval: float) -> None:
        self.run_id = run.pk
        self.interval = interval
        self._next = 0.0
        self.cancelled = False

    def __call__(self) -> bool:
        if self.cancelled:
            return True
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            status = (
                TrainingRun.all_tenants.filter(pk=self.run_id)
                .values_list("status", flat=True)
                .first()
            )
            self.cancelled = status != JobStatus.RUNNING
        return self.cancelled


class _RunSession:
    """What a worker keeps while training one attempt of a run: progress, epochs, checkpoints."""

    def __init__(self, run: TrainingRun, workdir: Path) -> None:
        self.run = run
        self.reporter = ProgressReporter(run)
        self.should_stop = _CancelCheck(run, settings.LEPTON_CANCEL_POLL_SECONDS)
        self.checkpoint_dir = workdir / "checkpoint"
        self.checkpoint_dir.mkdir()
        self.output_dir = workdir / "output"
        self.output_dir.mkdir()
        self.started = time.monotonic()
        self.gpu_seconds_before = run.gpu_seconds
        #: "cuda" or "cpu", set by the trainer once it picked the device
        self.device = ""
        self._epoch_done = False
        self._reported = False
        self._epoch_started = time.monotonic()
        self.resume = self._download_checkpoint()

    def _download_checkpoint(self) -> bool:
        name = self.run.checkpoint
        if not name:
            return False
        try:
            with (
                default_storage.open(name, "rb") as src,
                (self.checkpoint_dir / "checkpoint.pt").open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
        except OSError:
            logger.warning(
                "run %s: stored checkpoint %s is gone; starting afresh", self.run.pk, name
            )
            _log(self.run, "The last checkpoint could not be read; starting again from epoch 1.")
            return False
        return True

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"

    def gpu_seconds(self) -> float:
        spent = time.monotonic() - self.started if self.on_gpu else 0.0
        return self.gpu_seconds_before + spent

    def on_checkpoint(self, path: Path) -> None:
        """Store the checkpoint under a new name, point the run at it, then drop the old one,
        so a worker killed mid-upload leaves the previous checkpoint usable."""
        self._epoch_done = True
        if self.should_stop.cancelled:
            return
        name = (
            f"orgs/{self.run.organization_id}/runs/{self.run.pk}/checkpoint-{uuid.uuid4().hex}.pt"
        )
        with path.open("rb") as handle:
            stored = default_storage.save(name, File(handle))
        previous = self.run.checkpoint
        updated = TrainingRun.all_tenants.filter(pk=self.run.pk, status=JobStatus.RUNNING).update(
            checkpoint=stored, gpu_seconds=self.gpu_seconds()
        )
        if not updated:  # cancelled meanwhile: nobody will resume from it
            _delete_stored(stored)
            return
        self.run.checkpoint = stored
        _delete_stored(previous)

    def on_progress(self, progress: Any) -> None:
        # Called after every step: return at once unless something is to be written.
        if (
            self._reported
            and progress.phase == "train"
            and not self._epoch_done
            and not self.reporter.due()
        ):
            return
        extra: dict[str, Any] = {}
        if not self._reported:
            extra["device"] = self.device
            if self.resume:
                # The loop's first report of a resumed run stands at the checkpoint's epoch.
                extra["resumed_from_epoch"] = progress.epoch
        self._reported = True
        epoch_end = self._epoch_done and progress.phase == "train"
        if epoch_end:
            self._epoch_done = False
            now = time.monotonic()
            seconds, self._epoch_started = now - self._epoch_started, now
            EpochMetric.all_tenants.update_or_create(
                run=self.run,
                epoch=progress.epoch,
                defaults={
                    "organization_id": self.run.organization_id,
                    "train_loss": progress.train_loss,
                    "train_accuracy": progress.train_accuracy,
                    "val_loss": progress.val_loss,
                    "val_accuracy": progress.val_accuracy,
                    "seconds": seconds,
                },
            )
            _log(self.run, _epoch_line(progress))
        written = self.reporter.report(
            force=epoch_end or progress.phase == "done",
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
            eta_seconds=progress.eta_seconds,
            gpu_seconds=self.gpu_seconds(),
            **extra,
            message=(
                "Evaluating on the held-out split"
                if progress.phase in ("evaluate", "done")
                else f"Epoch {progress.epoch} of {progress.epochs}"
            ),
        )
        if written and self.reporter.last_rows == 0:
            self.should_stop.cancelled = True


def _epoch_line(progress: Any) -> str:
    parts = [f"Epoch {progress.epoch}/{progress.epochs}: train loss {progress.train_loss:.4f}"]
    if progress.train_accuracy is not None:
        parts.append(f"accuracy {progress.train_accuracy:.1%}")
    if progress.val_loss is not None:
        parts.append(f"validation loss {progress.val_loss:.4f}")
    if progress.val_accuracy is not None:
        parts.append(f"accuracy {progress.val_accuracy:.1%}")
    return ", ".join(parts)


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


def _train(run: TrainingRun) -> None:
    import torch

    from workers.ml.loop import TrainingCancelled

    torch.set_num_threads(settings.LEPTON_TORCH_THREADS)
    template = template_get(run.model_config.template)
    if run.attempts > 1:
        _log(
            run,
            f"Attempt {run.attempts} of {MAX_ATTEMPTS}: the previous worker stopped "
            f"({run.message or 'no message'}).",
        )
    tabular = template.task == TABULAR_REGRESSION
    loading = "Loading the table" if tabular else "Loading images"
    with tempfile.TemporaryDirectory(prefix="lepton-run-") as workdir:
        session = _RunSession(run, Path(workdir))
        session.reporter.report(force=True, message=loading, eta_seconds=None)
        if session.resume:
            _log(run, "Continuing from the last stored checkpoint.")
        try:
            if tabular:
                _train_regressor(run, template, session)
            else:
                _train_classifier(run, template, session)
        except TrainingCancelled:
            _delete_stored(TrainingRun.all_tenants.get(pk=run.pk).checkpoint)
            TrainingRun.all_tenants.filter(pk=run.pk).update(
                checkpoint="", gpu_seconds=session.gpu_seconds()
            )
            logger.info("run %s cancelled", run.pk)
        except torch.OutOfMemoryError:
            raise InvalidInput(
                f"The {'GPU' if session.on_gpu else 'worker'} ran out of memory at batch size "
                f"{run.hyperparameters.get('batch_size')}. Lower the batch size or the input "
                "size, then train again."
            )


def _device() -> str | None:
    return settings.LEPTON_TRAIN_DEVICE or None


def _train_classifier(run: TrainingRun, template: Template, session: _RunSession) -> None:
    from workers.ml.data import LabeledImage
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
    with _local_files(names + ([weights] if weights else [])) as paths:
        config = template.config(
            run.hyperparameters, pretrained_path=str(paths[weights]) if weights else None
        )
        if weights and not session.resume:
            _log(
                run,
                f"Starting from the uploaded weights {run.model_config.pretrained_weights_name}.",
            )
        by_split: dict[str, list[LabeledImage]] = {s: [] for s in Split.values}
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
        result = train_classifier(
            config=config,
            labels=labels,
            train=by_split[Split.TRAIN],
            validation=by_split[Split.VALIDATION],
            test=by_split[Split.TEST],
            output_dir=session.output_dir,
            on_progress=session.on_progress,
            should_stop=session.should_stop,
            device=_device(),
            checkpoint_dir=session.checkpoint_dir,
            resume=session.resume,
            on_checkpoint=session.on_checkpoint,
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
    from apps.datasets.tabular import boolean_value

    booleans = [c["name"] for c in schema["columns"] if c["type"] == "boolean"]
    for row in rows:
        for name in booleans:
            if name in row:
                value = boolean_value(row[name] or "")
                row[name] = None if value is None else float(value)  # type: ignore[assignment]
        yield row


def _train_regressor(run: TrainingRun, template: Template, session: _RunSession) -> None:
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
        output_dir=session.output_dir,
        on_progress=session.on_progress,
        should_stop=session.should_stop,
        device=_device(),
        checkpoint_dir=session.checkpoint_dir,
        resume=session.resume,
        on_checkpoint=session.on_checkpoint,
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
    session: _RunSession,
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
    """Keep the trained model as the config's next version, exactly once per run."""
    config = run.model_config
    gpu_seconds = session.gpu_seconds()
    with transaction.atomic():
        locked = TrainingRun.all_tenants.select_for_update().get(pk=run.pk)
        if locked.status != JobStatus.RUNNING:  # cancelled while evaluating
            return None
        existing = ModelVersion.all_tenants.filter(run=run).first()
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
        path = f"orgs/{run.organization_id}/models/{config.pk}/v{number}-{run.pk}.pt"
        with open(result.bundle_path, "rb") as handle:
            model_version.file.save(path, File(handle), save=False)
        model_version.save()
        # The final history is authoritative (exact epoch times, epochs of earlier attempts).
        EpochMetric.all_tenants.filter(run=run).delete()
        EpochMetric.all_tenants.bulk_create(
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
        )
        usage_record_training(run=run, device=result.device, gpu_seconds=gpu_seconds)
        transaction.on_commit(lambda: _delete_stored(checkpoint))
    _log(run, f"Done: {summary}. Stored as version {number}.")
    return model_version
