"""Writes for organizations and memberships."""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext

from apps.core.errors import InvalidInput
from apps.tenants.models import Membership, Organization, Region, Role


def _unique_slug(name: str) -> str:
    base = slugify(name, allow_unicode=False)[:100] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(gettext("Name the organization (your company or team)."), field="name")
    name = name.strip()
    max_length = Organization._meta.get_field("name").max_length or 120
    if len(name) > max_length:
        raise InvalidInput(
            gettext("The organization name is too long: %(max)d characters at most.")
            % {"max": max_length},
            field="name",
        )
    return name


def _clean_region(region: Any) -> str | None:
    if region in (None, ""):
        return None
    if region not in Region.values:
        raise InvalidInput(
            gettext("Unknown region %(region)s: choose one of %(choices)s.")
            % {"region": region, "choices": ", ".join(Region.values)},
            field="region",
        )
    return str(region)


@transaction.atomic
def organization_create(*, name: str, owner: Any, region: str | None = None) -> Organization:
    """Create an organization and make `owner` its owner.

    `region` (apps.tenants.models.Region) picks where its data lives; left out, the default.
    A blank or too long name, or an unknown region, raises InvalidInput naming the field.
    """
    name = _clean_name(name)
    region = _clean_region(region)
    organization = Organization.objects.create(
        name=name, slug=_unique_slug(name), **({"region": region} if region else {})
    )
    Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    from apps.audit.services import audit_record

    audit_record(
        organization=organization, actor=owner, action="organization.create", target=organization
    )
    return organization


def organization_suspend(*, organization: Organization, actor: Any, reason: str = "") -> int:
    """Suspend an organization: its pages, API keys, session API calls and endpoints are refused
    (403) from the next request, and its unfinished jobs are cancelled.

    A running training run stops before its next step (its worker polls the run's status); a
    running ingestion stops at its next progress write and keeps nothing (apps.datasets.ingest).
    Returns how many jobs were cancelled. Suspending a suspended organization changes nothing.
    """
    from apps.audit.services import audit_record

    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=organization.pk)
        if locked.suspended_at is not None:
            return 0
        locked.suspended_at = timezone.now()
        locked.suspension_reason = reason.strip()
        locked.save(update_fields=["suspended_at", "suspension_reason", "updated_at"])
        cancelled = _jobs_cancel(locked, actor=actor)
        audit_record(
            organization=locked,
            actor=actor,
            action="organization.suspend",
            target=locked,
            data={"reason": locked.suspension_reason, "jobs_cancelled": cancelled},
        )
    organization.suspended_at = locked.suspended_at
    organization.suspension_reason = locked.suspension_reason
    return cancelled


def organization_resume(*, organization: Organization, actor: Any) -> bool:
    """Lift a suspension: access comes back at once. The jobs it cancelled stay cancelled (their
    owners start them again). Returns False when the organization was not suspended."""
    from apps.audit.services import audit_record

    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=organization.pk)
        if locked.suspended_at is None:
            return False
        since = locked.suspended_at
        locked.suspended_at = None
        locked.suspension_reason = ""
        locked.save(update_fields=["suspended_at", "suspension_reason", "updated_at"])
        audit_record(
            organization=locked,
            actor=actor,
            action="organization.resume",
            target=locked,
            data={"suspended_at": since.isoformat()},
        )
    organization.suspended_at = None
    organization.suspension_reason = ""
    return True


def _jobs_cancel(organization: Organization, *, actor: Any) -> int:
    """Cancel the organization's queued and running ingestions and training runs."""
    from apps.core.jobs import FINISHED, JobStatus, job_finish
    from apps.datasets.models import DatasetVersion
    from apps.training.models import TrainingRun
    from apps.training.services import run_log_append, stored_delete

    message = gettext("Cancelled: the organization was suspended.")
    cancelled = 0
    versions = DatasetVersion.objects.for_organization(organization).exclude(status__in=FINISHED)
    for version in versions.select_for_update():
        job_finish(version, status=JobStatus.CANCELLED, message=message, error=message)
        cancelled += 1
    runs = TrainingRun.objects.for_organization(organization).exclude(status__in=FINISHED)
    for run in runs.select_for_update():
        job_finish(
            run,
            status=JobStatus.CANCELLED,
            message=message,
            cancelled_by=actor if getattr(actor, "pk", None) else None,
            eta_seconds=None,
            checkpoint_bytes=0,  # deleted on commit: the storage quota no longer counts it
        )
        run_log_append(run, message)
        transaction.on_commit(functools.partial(stored_delete, run.checkpoint))
        cancelled += 1
    return cancelled
