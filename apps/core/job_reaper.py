"""The reaper: re-send each job whose message is lost, once, and never a job that only waits.

A job's message is lost when
- its worker died: the job is running and its lease ran out (progress writes renew it) since
  it was last sent. It is sent again once per loss: a job re-sent after its lease ran out is
  not sent again on that account until a worker claims it and loses it anew;
- or the broker dropped it: the job still waits `LEPTON_JOB_REQUEUE_SECONDS` after it was last
  sent (queued, or re-sent after its worker died), and the broker holds no message with the id
  it was sent under (apps.core.broker). A job waiting behind a long backlog still has its
  message there, and gets no extra one. When the broker cannot be read, the job is re-sent at
  most once per requeue interval.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from apps.core.broker import held_task_ids
from apps.core.job_registry import JobKind, job_enqueue, job_kinds
from apps.core.jobs import JobStatus

logger = logging.getLogger(__name__)

#: most jobs of one kind looked at per pass; the next pass takes the rest
BATCH = 1000


def jobs_lost(kind: JobKind) -> list[Any]:
    """Ids of `kind`'s jobs whose message is lost (see the module's docstring)."""
    model = kind.model_class
    now = timezone.now()
    expired = Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    worker_died = list(
        model.all_tenants.filter(expired)
        .filter(Q(sent_at__isnull=True) | Q(sent_at__lt=F("lease_expires_at")))
        .values_list("pk", flat=True)[:BATCH]
    )
    # Still waiting long after the last send (queued, or re-sent after its worker died and
    # never picked up): lost only when the broker no longer holds that message.
    waited = now - timedelta(seconds=settings.LEPTON_JOB_REQUEUE_SECONDS)
    fields = ["pk", "task_id", *([kind.queue_field] if kind.queue_field else [])]
    waiting = list(
        model.all_tenants.filter(Q(status=JobStatus.QUEUED) | expired)
        .filter(Q(sent_at__lt=waited) | Q(sent_at__isnull=True, updated_at__lt=waited))
        .exclude(pk__in=worker_died)
        .values(*fields)[:BATCH]
    )
    if not waiting:
        return worker_died
    queues = {(kind.queue_field and row[kind.queue_field]) or kind.queue for row in waiting}
    held = held_task_ids(queues, taken_within=settings.LEPTON_JOB_LEASE_SECONDS)
    dropped = [row["pk"] for row in waiting if held is None or row["task_id"] not in held]
    return worker_died + dropped


def jobs_reap() -> int:
    """Send the task of every lost job of every kind again; returns how many were sent."""
    sent = 0
    for kind in job_kinds():
        for pk in jobs_lost(kind):
            if job_enqueue(kind, pk):
                sent += 1
    if sent:
        logger.warning("re-sent %d lost job(s)", sent)
    return sent
