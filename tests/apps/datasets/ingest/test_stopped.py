"""An ingestion whose version stops running under it (cancelled when its organization is
suspended) stops at its next progress write and keeps nothing: no rows, no packs, no table."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.jobs import JobStatus, job_claim, job_finish
from apps.core.scoping import tenant_scope
from apps.datasets.ingest.run import IngestionStopped, ingest_images
from apps.datasets.ingest.storing import packs_folder
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.datasets.services import dataset_create
from apps.datasets.tabular.services import ingest_tabular
from tests.conftest import zip_upload
from tests.support.markets import market_csv


def _claimed_then_cancelled(tenant, **create) -> DatasetVersion:
    version = dataset_create(organization=tenant.organization, user=tenant.user, **create)
    claimed = job_claim(DatasetVersion, version.pk)
    assert claimed is not None
    job_finish(
        DatasetVersion.objects.for_organization(tenant.organization).get(pk=version.pk),
        status=JobStatus.CANCELLED,
        message="Cancelled",
    )
    return claimed


def test_it_stops_an_image_ingestion_and_removes_its_packs(tenant, outsider, settings):
    settings.LEPTON_PROGRESS_INTERVAL = 0
    claimed = _claimed_then_cancelled(tenant, name="shapes", upload=zip_upload())
    with tenant_scope(tenant.organization), pytest.raises(IngestionStopped):
        ingest_images(claimed)
    claimed.refresh_from_db()
    assert claimed.status == JobStatus.CANCELLED and claimed.message == "Cancelled"
    assert not DatasetItem.objects.for_organization(tenant.organization).exists()
    folder = packs_folder(tenant.organization.pk, claimed.pk)
    assert not default_storage.exists(folder) or default_storage.listdir(folder) == ([], [])


def test_it_stops_a_table_ingestion_before_it_writes_the_table(tenant):
    upload = SimpleUploadedFile("markets.csv", market_csv(), content_type="text/csv")
    claimed = _claimed_then_cancelled(tenant, name="market", upload=upload, kind="tabular")
    with tenant_scope(tenant.organization), pytest.raises(IngestionStopped):
        ingest_tabular(claimed)
    claimed.refresh_from_db()
    assert claimed.status == JobStatus.CANCELLED and not claimed.data_file
