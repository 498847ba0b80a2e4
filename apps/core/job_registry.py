"""The registry of job kinds: each kind of background work is declared once, here it is run.

A kind names its model (a `JobModel`: status, progress, lease, attempts live on the row), the
Celery task name its messages carry, its queue and its work function. Enqueueing, the task body
(claim, scope, failure handling, retries while another worker holds the lease), the attempt cap
and the reaper (apps.core.job_reaper) all read the declaration, so adding a kind of job is one
`register(JobKind(...))` in the app's `jobs.py` plus its work function.

Services enqueue by kind (`job_enqueue_on_commit(KIND, pk)`); the message is sent by task name,
so no service imports a task module. The tasks themselves are made from the registry in
workers/tasks/jobs.py.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps as django_apps
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules, import_string

from apps.core.errors import ServiceError
from apps.core.jobs import MAX_ATTEMPTS, JobModel, JobStatus, job_run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobKind:
    """One kind of background job, declared once in its app's `jobs.py`."""

    #: stable identifier, e.g. "dataset_version.ingest"
    name: str
    #: "app_label.ModelName" of the job rows (a JobModel subclass)
    model: str
    #: the Celery task name the messages carry; keep it stable, queued messages refer to it
    task: str
    #: "module.path.function" taking the claimed row; imported on the worker only
    work: str
    #: how the customer's messages name the work ("Ingestion", "Training")
    what: str
    #: the queue every job of this kind goes to ...
    queue: str = "cpu"
    #: ... unless the row names its own (a training run goes to gpu or cpu by template)
    queue_field: str | None = None
    #: errors that fail the job with their own message (meant for the customer)
    expected: tuple[type[Exception], ...] = field(default=(ServiceError,))
    #: claims after which a job whose worker never finished it is failed
    max_attempts: int = MAX_ATTEMPTS

    @property
    def model_class(self) -> type[JobModel]:
        return django_apps.get_model(self.model)


_kinds: dict[str, JobKind] = {}
_discovered = False


def register(kind: JobKind) -> JobKind:
    """Declare a kind of job (at import time of an app's `jobs.py`); returns it for reference."""
    known = _kinds.get(kind.name)
    if known is not None and known != kind:
        raise ValueError(f"job kind {kind.name!r} is declared twice, differently")
    if any(k.task == kind.task and k.name != kind.name for k in _kinds.values()):
        raise ValueError(f"two job kinds share the task name {kind.task!r}")
    _kinds[kind.name] = kind
    return kind


def job_kinds() -> list[JobKind]:
    """Every declared kind (each installed app's `jobs.py` is imported the first time)."""
    global _discovered
    if not _discovered:
        autodiscover_modules("jobs")
        _discovered = True
    return sorted(_kinds.values(), key=lambda kind: kind.name)


def job_kind(name: str) -> JobKind:
    job_kinds()
    return _kinds[name]


def job_kind_for_model(model: type[Any]) -> JobKind | None:
    label = model._meta.label
    return next((kind for kind in job_kinds() if kind.model == label), None)


def job_enqueue(kind: JobKind, pk: Any) -> str:
    """Send the job's task to its queue now and record when and under which message id.

    Call it once the row is committed (`job_enqueue_on_commit`). The row is stamped before the
    message goes out: a send that fails leaves a job that the reaper finds without a message.
    Sending twice is harmless (the claim runs a job once) but the reaper avoids it.
    """
    model = kind.model_class
    queue = kind.queue
    if kind.queue_field:
        named = model.all_tenants.filter(pk=pk).values_list(kind.queue_field, flat=True).first()
        queue = named or kind.queue
    task_id = str(uuid.uuid4())
    if not model.all_tenants.filter(pk=pk).update(sent_at=timezone.now(), task_id=task_id):
        return ""  # deleted before its transaction's on_commit ran
    from lepton_portal.celery import app

    app.send_task(kind.task, args=(str(pk),), queue=queue, task_id=task_id)
    return task_id


def job_enqueue_on_commit(kind: JobKind, pk: Any) -> None:
    """Enqueue once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: job_enqueue(kind, pk))


def job_execute(kind: JobKind, pk: Any) -> Any:
    """What a kind's task runs: claim the row, run the work in its organization's scope, and
    record how it ended (apps.core.jobs.job_run). Raises JobBusy while another worker holds it."""
    work: Callable[[Any], None] = import_string(kind.work)
    return job_run(
        kind.model_class,
        pk,
        work,
        what=kind.what,
        expected=kind.expected,
        max_attempts=kind.max_attempts,
    )


def job_queue_position(kind: JobKind, job: Any) -> int | None:
    """1 for the next job its queue's workers will take, 2 after that, ...; None unless queued.

    Workers serve every organization's jobs from one queue, so this counts them all, in the
    order they were queued; only the number leaves the job layer.
    """
    if job.status != JobStatus.QUEUED:
        return None
    same_queue = {kind.queue_field: getattr(job, kind.queue_field)} if kind.queue_field else {}
    ahead = kind.model_class.all_tenants.filter(
        status=JobStatus.QUEUED, created_at__lt=job.created_at, **same_queue
    ).count()
    return ahead + 1
