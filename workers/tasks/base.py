"""The base of every Celery task: no task inherits or leaves a tenant scope."""

from __future__ import annotations

from typing import Any

from celery import Task

from apps.core.scoping import unscoped_entry


class ScopedTask(Task):
    """Runs each task body inside `unscoped_entry`: a pool process runs many tasks in turn, and
    one that raised while an organization was active must not hand that scope to the next."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with unscoped_entry(f"task {self.name}"):
            return super().__call__(*args, **kwargs)
