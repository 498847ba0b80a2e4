"""What an organization stores, counted in bytes, and the storage quota checked against it.

The figure counts the bytes actually stored, as the storage holds them:

- dataset versions: the uploads kept (`source_size`: the archive or CSV, loose images added
  to a version) and what ingestion wrote (`stored_bytes`: the decoded images and thumbnails in
  pack files or whole files, a table's canonical CSV). A version shares the stored images of
  the versions it was derived from, and an image uploaded again points at the copy already
  stored: each stored byte is counted once, by the version that wrote it (when a dataset is
  deleted, apps.datasets.deletion hands the bytes still in use to the version that keeps them).
  A running ingestion's `stored_bytes` is what it has written so far, so two ingestions of one
  organization see each other;
- training: the model files of trained versions (`ModelVersion.file_bytes`), the checkpoint a
  run keeps while it is unfinished (`TrainingRun.checkpoint_bytes`) and the pretrained weights
  customers uploaded (`ModelConfig.pretrained_weights_bytes`).

The quota itself is read only through apps.quotas.selectors.organization_limits.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Expression, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from apps.core.errors import QuotaExceeded
from apps.core.text import human_size
from apps.datasets.models import DatasetVersion
from apps.quotas.selectors import organization_limits
from apps.tenants.models import Organization
from apps.training.models import ModelConfig, ModelVersion, TrainingRun

#: (model, the expression of the bytes one of its rows holds in storage)
_COUNTED: tuple[tuple[Any, Any], ...] = (
    (DatasetVersion, F("source_size") + F("stored_bytes")),
    (ModelVersion, F("file_bytes")),
    (TrainingRun, F("checkpoint_bytes")),
    (ModelConfig, F("pretrained_weights_bytes")),
)


def organization_storage_used(*, organization: Organization | Any) -> int:
    """Bytes `organization` stores: datasets (uploads kept, decoded images, thumbnails,
    tables), model files, checkpoints and uploaded weights (see this module's docstring)."""
    total = 0
    for model, size in _COUNTED:
        rows = model.objects.for_organization(organization)
        total += rows.aggregate(n=Sum(size))["n"] or 0
    return int(total)


def storage_used_expression(organization: str = "pk") -> Expression:
    """organization_storage_used as one expression per organization row, for annotating a
    queryset of organizations (the admin's sortable column); `organization` names the field
    holding the organization's id in the outer query."""
    total: Any = Value(0)
    for model, size in _COUNTED:
        per_organization = (
            model.objects.for_organization(OuterRef(organization))
            .values("organization")
            .annotate(total=Sum(size))
            .values("total")
        )
        total = total + Coalesce(Subquery(per_organization), 0)
    return total


def storage_quota_error(
    *, organization: Organization, used: int, adding_bytes: int, what: str, field: str | None = None
) -> QuotaExceeded:
    """The error a storage quota answers with: the quota, the use, the addition, who can act."""
    limit = organization_limits(organization).storage_bytes
    message = _(
        "%(what)s would add %(adding)s to your organization's storage, which holds %(used)s of "
        "its %(quota)s storage quota. Delete datasets or models you no longer need, or ask an "
        "owner to have the platform's administrators raise the quota."
    ) % {
        "what": what,
        "adding": human_size(adding_bytes),
        "used": human_size(used),
        "quota": human_size(limit or 0),
    }
    return QuotaExceeded(message, field=field)


def storage_quota_check(
    *,
    organization: Organization,
    adding_bytes: int,
    what: str,
    used: int | None = None,
    field: str | None = None,
) -> None:
    """Refuse to store `adding_bytes` more for `organization` when that goes over its quota.

    `what` names the addition for the message ("The upload 'x.zip'"); `used` is the use to
    count from when the caller holds it (else read now); `field` the input the error is about.

    Raises:
        QuotaExceeded (403): naming the quota, the use, the addition and who can raise it.
    """
    limit = organization_limits(organization).storage_bytes
    if limit is None or adding_bytes <= 0:  # what frees space (or adds none) is never refused
        return
    if used is None:
        used = organization_storage_used(organization=organization)
    if used + adding_bytes > limit:
        raise storage_quota_error(
            organization=organization,
            used=used,
            adding_bytes=adding_bytes,
            what=what,
            field=field,
        )
