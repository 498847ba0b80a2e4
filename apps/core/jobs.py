"""Jobs are database rows: the row, not the broker, is the source of truth.

A task claims its row with one conditional UPDATE, so two deliveries of the same message cannot
both run it; a worker that dies leaves a lease that expires, and the re-delivered message (acks
late, reject on worker lost) claims the row again. Progress writes are throttled and renew the
lease. Which rows are jobs, and which task and queue run them, is declared in
apps.core.job_registry; the reaper is apps.core.job_reaper.

Once a job has finished its row's job fields never change again: the claim, progress writes
and `job_finish` all skip finished rows, so a ready dataset version stays as it was made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ServiceError
from apps.core.models import TenantModel
from apps.core.scoping import tenant_scope

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobModel(TenantModel):
    status = models.CharField(
        _("status"), max_length=16, choices=JobStatus, default=JobStatus.QUEUED, db_index=True
    )
    progress = models.FloatField(_("progress"), default=0.0)
    message = models.CharField(_("message"), max_length=500, blank=True)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    #: when the job's task was last sent, and the message's id: the reaper re-sends a job only
    #: when its message is really lost (apps.core.job_reaper)
    sent_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta(TenantModel.Meta):
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class JobBusy(Exception):
    """Another worker holds a live lease on the job; try again once it could have expired."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"job is leased by another worker for {retry_in:.0f}s more")
        self.retry_in = retry_in


def _lease() -> timedelta:
    return timedelta(seconds=settings.LEPTON_JOB_LEASE_SECONDS)


J = TypeVar("J", bound=JobModel)


def job_claim(model: type[J], pk: Any, *, max_attempts: int = MAX_ATTEMPTS) -> J | None:
    """Claim a queued job, or a running one whose worker's lease ran out.

    Returns the claimed row, None when there is nothing to do (finished, cancelled, missing),
    and raises JobBusy when a live worker holds it. A job claimed more than `max_attempts`
    times is marked failed instead of being run again.
    """
    now = timezone.now()
    claimable = Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    claimed = (
        model.all_tenants.filter(pk=pk)
        .filter(claimable)
        .update(
            status=JobStatus.RUNNING,
            lease_expires_at=now + _lease(),
            attempts=F("attempts") + 1,
            started_at=Coalesce("started_at", now),
            updated_at=now,
        )
    )
    job = model.all_tenants.select_related("organization").filter(pk=pk).first()
    if job is None:
        return None
    if not claimed:
        if job.status == JobStatus.RUNNING and job.lease_expires_at:
            raise JobBusy(max(1.0, (job.lease_expires_at - now).total_seconds() + 1))
        return None
    if job.attempts > max_attempts:
        job_finish(
            job,
            status=JobStatus.FAILED,
            message=str(_("Stopped after %(n)d attempts.") % {"n": max_attempts}),
            error=f"The job was started {max_attempts} times and its worker never finished it.",
        )
        return None
    return job


def job_finish(
    job: JobModel, *, status: str, message: str = "", error: str = "", **fields: Any
) -> None:
    """Write a job's final state; a job already finished (cancelled, say) keeps its state."""
    now = timezone.now()
    values = {
        "status": status,
        "message": message[:500],
        "error": error,
        "finished_at": now,
        "lease_expires_at": None,
        "updated_at": now,
        **fields,
    }
    if status == JobStatus.SUCCEEDED:
        values["progress"] = 1.0
    type(job).all_tenants.filter(pk=job.pk).exclude(status__in=FINISHED).update(**values)
    for name, value in values.items():
        setattr(job, name, value)


def job_run(
    model: type[J],
    pk: Any,
    work: Callable[[J], None],
    *,
    what: str,
    expected: tuple[type[Exception], ...] = (ServiceError,),
    max_attempts: int = MAX_ATTEMPTS,
) -> J | None:
    """Claim a job, run `work(job)` in its organization's scope, and record how it failed.

    An `expected` error fails the job with its own message (meant for the customer); anything
    else is logged with its traceback and the customer reads that `what` failed internally.
    Returns the job as it ended, or None when there was nothing to claim. JobBusy propagates.
    """
    job = job_claim(model, pk, max_attempts=max_attempts)
    if job is None:
        return None
    with tenant_scope(job.organization):
        try:
            work(job)
        except expected as exc:
            message = getattr(exc, "message", None) or str(exc)
            job_finish(job, status=JobStatus.FAILED, message=message[:500], error=message)
        except Exception as exc:
            logger.exception("%s %s failed", what, job.pk)
            job_finish(
                job,
                status=JobStatus.FAILED,
                message=f"{what} failed because of an internal error; the team was notified.",
                error=f"{type(exc).__name__}: {exc}",
            )
    job.refresh_from_db()
    return job


class ProgressReporter:
    """Writes a job's progress at most once per `interval` seconds (and always when forced).

    Each write renews the lease, so a job whose worker stops writing is taken to be abandoned.
    """

    def __init__(self, job: JobModel, *, interval: float | None = None) -> None:
        self.job = job
        self.interval = settings.LEPTON_PROGRESS_INTERVAL if interval is None else interval
        self._last: float | None = None
        self.writes = 0
        #: rows the last write changed: 0 means the job is no longer running (cancelled, say)
        self.last_rows = 1

    def due(self) -> bool:
        """Whether a report now would be written (callers skip building one otherwise)."""
        return self._last is None or time.monotonic() - self._last >= self.interval

    def report(self, *, force: bool = False, **fields: Any) -> bool:
        if not force and not self.due():
            return False
        self._last = time.monotonic()
        stamp = timezone.now()
        fields["lease_expires_at"] = stamp + _lease()
        fields["updated_at"] = stamp
        self.last_rows = (
            type(self.job)
            .all_tenants.filter(pk=self.job.pk, status=JobStatus.RUNNING)
            .update(**fields)
        )
        self.writes += 1
        return True
