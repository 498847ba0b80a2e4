"""Writes for training, on the request side: configure a model, attach weights, start and cancel
runs. What the worker does with a run is apps.training.execution.

A run is a job row (apps.core.jobs) of the kind declared in apps.training.jobs; starting one
enqueues it once the row is committed. Cancelling marks the row; the worker notices within
LEPTON_CANCEL_POLL_SECONDS and stops before its next step.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import (
    Conflict,
    InvalidInput,
    PayloadTooLarge,
    check_may_change,
)
from apps.core.job_registry import job_enqueue_on_commit
from apps.core.jobs import JobStatus, job_finish
from apps.core.text import human_size
from apps.datasets.models import DatasetKind, DatasetVersion
from apps.datasets.storage import storage_quota_check
from apps.quotas.services import quota_check_training_start
from apps.tenants.models import Organization
from apps.training.jobs import TRAIN
from apps.training.models import ModelConfig, TrainingRun
from apps.training.templates import TEMPLATES, Template, template_get
from workers.ml.tasks import IMAGE_CLASSIFICATION

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
    config = ModelConfig.objects.create(
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
    *, model_config: ModelConfig, upload: UploadedFile, user: Any, role: str | None = None
) -> ModelConfig:
    """Keep weights the customer uploaded; the model's runs start from them.

    Members attach weights to models they made, admins and owners to any (`role`: the
    caller's, or None to read it from their membership).

    The file must be a PyTorch state dict (a torchvision ``.pth``) or a Lepton model file of the
    same template; it is read with ``weights_only`` (no code in it can run) and checked to fit
    the template before it is stored, replacing earlier uploaded weights.

    Raises:
        InvalidInput: for a table template, an empty or unreadable file, or weights that do
            not fit, saying which tensors.
        PayloadTooLarge: over LEPTON_MAX_WEIGHTS_MB.
        QuotaExceeded: over the organization's storage quota.
        ServiceError (403): a member changing another member's model, or a viewer.
    """
    _check_may_change_model(model_config, user=user, role=role)
    template = template_get(model_config.template)
    name = Path(upload.name or "weights.pth").name[:255]
    _check_weights_upload(model_config, template, upload, name=name)
    organization = model_config.organization
    with tempfile.NamedTemporaryFile(prefix="lepton-weights-", suffix=".pt") as local:
        for chunk in upload.chunks():
            local.write(chunk)
        local.flush()
        _check_weights_fit(model_config, template, Path(local.name), name=name)
        local.seek(0)
        previous = model_config.pretrained_weights.name
        stored = default_storage.save(
            f"orgs/{organization.pk}/weights/{model_config.pk}-{uuid.uuid4().hex}.pt", File(local)
        )
    ModelConfig.objects.for_organization(organization).filter(pk=model_config.pk).update(
        pretrained_weights=stored,
        pretrained_weights_name=name,
        pretrained_weights_bytes=upload.size,
        updated_at=timezone.now(),
    )
    stored_delete(previous)
    audit_record(
        organization=organization,
        actor=user,
        action="model.weights",
        target=model_config,
        data={"file": name, "bytes": upload.size},
    )
    model_config.refresh_from_db()
    return model_config


def _check_weights_upload(
    model_config: ModelConfig, template: Template, upload: UploadedFile, *, name: str
) -> None:
    """Refuse weights for a table template, an empty or too large file, or one over quota."""
    if template.task != IMAGE_CLASSIFICATION:
        raise InvalidInput(
            f"Template {template.key} learns from a table and starts from scratch; pretrained "
            "weights only apply to image templates.",
            field="file",
        )
    limit = settings.LEPTON_MAX_WEIGHTS_BYTES
    size = upload.size or 0  # an uploaded file always has its size; the stubs allow None
    if size > limit:
        raise PayloadTooLarge(
            f"'{name}' is {human_size(size)}; weights files are limited to {human_size(limit)}.",
            field="file",
        )
    if size == 0:
        raise InvalidInput(f"'{name}' is empty.", field="file")
    # The weights replace those uploaded before (deleted once these are stored).
    storage_quota_check(
        organization=model_config.organization,
        adding_bytes=size - model_config.pretrained_weights_bytes,
        what=gettext("The weights '%(name)s'") % {"name": name},
        field="file",
    )


def _check_weights_fit(
    model_config: ModelConfig, template: Template, path: Path, *, name: str
) -> None:
    """Load the weights (weights only: no code in them runs) into the template's model."""
    from workers.ml.architectures import build_model, load_pretrained

    labels = model_config.dataset_version.labels
    try:
        load_pretrained(
            build_model(template.key, num_classes=max(2, len(labels))), template.key, path
        )
    except ValueError as exc:
        message = str(exc).replace(path.name, f"'{name}'")
        raise InvalidInput(
            f"{message}. Upload a state dict saved with torch.save(model.state_dict()) "
            f"from a {template.name}, or a model file of this template.",
            field="file",
        )


def training_run_start(
    *, model_config: ModelConfig, user: Any, role: str | None = None
) -> TrainingRun:
    """Queue a training run of `model_config` on its template's queue (gpu, or cpu for tables).

    Members train (and retrain) models they made, admins and owners any (`role`: the caller's,
    or None to read it from their membership). Raises ServiceError (403) otherwise.

    Raises:
        QuotaExceeded: the organization has as many runs queued or running as it may, or has
            used its month's GPU-seconds.
    """
    _check_may_change_model(model_config, user=user, role=role, action=_("train"))
    template = template_get(model_config.template)
    _check_trainable(model_config.dataset_version, template)
    with transaction.atomic():
        quota_check_training_start(organization=model_config.organization)
        run = TrainingRun.objects.create(
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
        job_enqueue_on_commit(TRAIN, run.pk)
    return run


def training_run_cancel(*, run: TrainingRun, user: Any, role: str | None = None) -> TrainingRun:
    """Cancel a queued or running run.

    A queued run is never started; a running one stops before its next training step, once its
    worker sees the new state (within LEPTON_CANCEL_POLL_SECONDS), and stores no model version.
    Members cancel the runs they started, admins and owners any (`role`: the caller's, or None
    to read it from their membership; platform staff pass Role.OWNER).

    Raises:
        Conflict: the run already finished.
        ServiceError (403): a member cancelling another member's run, or a viewer.
    """
    check_may_change(
        role=role,
        user=user,
        created_by_id=run.created_by_id,
        organization_id=run.organization_id,
        what=_("the run"),
        action=_("cancel"),
    )
    with transaction.atomic():
        locked = (
            TrainingRun.objects.for_organization(run.organization_id)
            .select_for_update()
            .get(pk=run.pk)
        )
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
            checkpoint_bytes=0,  # deleted below: the storage quota no longer counts it
        )
        run_log_append(locked, f"Cancelled by {who}.")
        audit_record(
            organization=locked.organization,
            actor=user,
            action="training_run.cancel",
            target=locked,
        )
        checkpoint = locked.checkpoint
        transaction.on_commit(lambda: stored_delete(checkpoint))
    locked.refresh_from_db()
    return locked


def _check_may_change_model(
    model_config: ModelConfig, *, user: Any, role: str | None, action: str = ""
) -> None:
    check_may_change(
        role=role,
        user=user,
        created_by_id=model_config.created_by_id,
        organization_id=model_config.organization_id,
        what=_("the model '%(name)s'") % {"name": model_config.name},
        action=action or _("change"),
    )


def run_log_append(run: TrainingRun, line: str) -> None:
    """Append a time-stamped line to the run's log (one UPDATE; the page shows the tail)."""
    stamp = timezone.now().strftime("%H:%M:%S")
    TrainingRun.objects.for_organization(run.organization_id).filter(pk=run.pk).update(
        log=Concat("log", Value(f"{stamp} {line}\n"))
    )


def stored_delete(name: str | None) -> None:
    """Delete a stored file (a checkpoint, a model bundle) if it is still there."""
    if name:
        with contextlib.suppress(OSError, NotImplementedError):
            default_storage.delete(name)
