"""The storage quota while an ingestion stores images: checked before each image is written.

An upload is checked against the quota by its own size before it is kept, but its images are
stored decoded, many times larger (a 131 KB zip of twelve 88-megapixel PNGs decodes to 3 GB).
So the ingestion holds an Allowance (apps.datasets.canonical): the quota less what the
organization stored before it started, this upload included. Every decoding process reserves
an image's bytes from it before appending them to a pack; the first image that does not fit
stops the ingestion, which then deletes everything it stored, the upload too, and fails with
the quota's message (see ingest_images).

While it runs the version's `stored_bytes` is what it has written so far (written with its
progress), so another ingestion of the same organization counts it; the others' use is read
again at each progress write and the allowance follows it.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from apps.core.errors import QuotaExceeded
from apps.datasets.ingest import storing
from apps.datasets.ingest.decoding import new_allowance
from apps.datasets.models import DatasetVersion
from apps.datasets.storage import organization_storage_used, storage_quota_error
from apps.quotas.selectors import organization_limits


class IngestionQuota:
    """The storage an ingestion may still fill, and what it has written so far."""

    def __init__(self, version: DatasetVersion) -> None:
        self.version = version
        self.organization = version.organization
        self.quota = organization_limits(self.organization).storage_bytes
        # A re-run starts over: what an earlier attempt wrote is deleted, the row counts none.
        DatasetVersion.objects.for_organization(self.organization).filter(pk=version.pk).update(
            stored_bytes=0
        )
        #: what the organization stores besides this ingestion's images (its upload included)
        self.used_before = organization_storage_used(organization=self.organization)
        self.allowance = new_allowance(self._limit())
        self._reported = 0  # the stored_bytes the version's row holds

    def _limit(self) -> int | None:
        return None if self.quota is None else max(0, self.quota - self.used_before)

    def stored_bytes(self) -> int:
        """For a progress write (the version's `stored_bytes`): the bytes written so far. The
        others' use is read again first (another ingestion may have stored more, a dataset may
        have been deleted), and the allowance follows it."""
        total = organization_storage_used(organization=self.organization)
        self.used_before = total - self._reported
        self.allowance.set_limit(self._limit())
        self._reported = self.allowance.used
        return self._reported

    def error(self) -> QuotaExceeded:
        """The ingestion's failure once an image did not fit: the quota's message."""
        name = self.version.source_name or _("the added images")
        exceeded = storage_quota_error(
            organization=self.organization,
            used=self.used_before,
            adding_bytes=self.allowance.used + self.allowance.refused,
            what=_("Storing the images decoded from '%(name)s'") % {"name": name},
        )
        kept = _("The ingestion stopped there and kept nothing, the upload included.")
        return QuotaExceeded(f"{exceeded.message} {kept}")


def forget_stored(version: DatasetVersion, *, upload_too: bool) -> None:
    """A failed version's row counts nothing it stored; over the storage quota, its upload
    (the archive or table, the added images) is deleted too, so that nothing is left of it."""
    fields: dict[str, Any] = {"stored_bytes": 0}
    if upload_too:
        added = [image["file"] for image in (version.changes or {}).get("images") or []]
        storing.delete_files([version.source.name or "", *added] if version.source else added)
        fields |= {"source": "", "source_size": 0}
    DatasetVersion.objects.for_organization(version.organization_id).filter(pk=version.pk).update(
        **fields
    )
