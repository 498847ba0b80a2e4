"""Deleting a model: its runs, their metrics and logs, its trained versions, and their files
(uploaded pretrained weights, trained bundles, checkpoints). Usage events of its runs stay,
without the run, so past usage still adds up.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from apps.audit.services import audit_record
from apps.core.errors import Conflict, check_may_change
from apps.core.jobs import JobStatus
from apps.training.models import ModelConfig, ModelVersion, TrainingRun
from apps.training.services import stored_delete


def model_config_delete(*, model_config: ModelConfig, user: Any, role: str) -> str:
    """Delete a model with its runs and versions, then their files; a message saying so.

    Admins and owners may delete any model of the organization, members those they made.

    Raises:
        ServiceError (403): a member deleting another member's model.
        Conflict (409): a run of it is queued or training, or one of its versions is deployed.
    """
    check_may_change(
        action="delete",
        role=role,
        user=user,
        created_by_id=model_config.created_by_id,
        what=f"the model '{model_config.name}'",
    )
    with transaction.atomic():
        own = model_config.organization_id
        runs = list(
            TrainingRun.objects.for_organization(own)
            .select_for_update()
            .filter(model_config=model_config)
        )
        if any(run.status in (JobStatus.QUEUED, JobStatus.RUNNING) for run in runs):
            raise Conflict(
                f"A run of '{model_config.name}' is queued or training. Cancel it on its page "
                "(or POST runs/{id}/cancel/), then delete the model."
            )
        versions = list(
            ModelVersion.objects.for_organization(own).filter(model_config=model_config)
        )
        endpoints = sorted(
            set(
                ModelVersion.objects.for_organization(own)
                .filter(model_config=model_config, endpoints__isnull=False)
                .values_list("endpoints__name", flat=True)
                .distinct()
            )
        )
        if endpoints:
            shown = ", ".join(f"'{name}'" for name in endpoints)
            raise Conflict(
                f"'{model_config.name}' is deployed as the endpoint(s) {shown}. Delete them on "
                "their pages first: apps calling them would stop working."
            )
        files = [model_config.pretrained_weights.name, *(v.file.name for v in versions)]
        files += [run.checkpoint for run in runs]
        audit_record(
            organization=model_config.organization,
            actor=user,
            action="model.delete",
            target=model_config,
            data={"name": model_config.name, "runs": len(runs), "versions": len(versions)},
        )
        name = model_config.name
        model_config.delete()
        for stored in files:
            transaction.on_commit(partial(stored_delete, stored))
    return (
        f"Deleted the model '{name}' with its {len(runs)} run{'s' if len(runs) != 1 else ''} "
        f"and {len(versions)} trained version{'s' if len(versions) != 1 else ''}."
    )
