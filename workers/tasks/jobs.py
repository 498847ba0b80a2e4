"""The Celery task of every registered job kind, made from the registry (apps.core.job_registry).

Each kind gets a task under the name it declares, acking late and re-queued when its worker
dies; the body claims the row and runs the kind's work function (job_execute). While another
live worker holds the job, the task retries once that worker's lease could have run out.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from apps.core.job_registry import JobKind, job_execute, job_kinds
from apps.core.jobs import JobBusy


def _task_for(kind: JobKind) -> Any:
    @shared_task(
        name=kind.task, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None
    )
    def run_job(self: Any, job_id: str) -> None:
        try:
            job_execute(kind, job_id)
        except JobBusy as busy:
            raise self.retry(countdown=busy.retry_in) from None

    return run_job


#: task name -> task, one per registered kind
TASKS = {kind.task: _task_for(kind) for kind in job_kinds()}
