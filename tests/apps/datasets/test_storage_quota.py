"""The storage quota counts the bytes actually stored and is checked while ingesting.

An upload is checked by its own size, but images are stored decoded: a zip of a few kilobytes
can hold gigabytes of pixels (the issue's 131 KB zip of twelve 88-megapixel PNGs was stored as
3.18 GB over a 1 GiB quota). So each image's bytes are reserved against the quota before they
are written, by whichever decoding process writes them, and the first that does not fit stops
the ingestion: it fails with the quota's message and nothing of it is left, its upload
included. The used figure is compared with the bytes on disk under the organization's folder.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.jobs import JobStatus
from apps.core.scoping import tenant_scope
from apps.core.text import human_size
from apps.datasets.canonical import Allowance, Destination, OverAllowance, store_batch
from apps.datasets.deletion import dataset_delete
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.datasets.services import dataset_create, dataset_version_ingest
from apps.datasets.storage import organization_storage_used
from apps.datasets.versions import dataset_version_derive
from apps.quotas.services import quota_override_set
from apps.tenants.models import Role
from apps.training.models import ModelVersion, TrainingRun
from tests.conftest import trained_model_version, zip_upload
from tests.support.archives import bomb_zip, class_images, solid_png, zip_bytes
from tests.support.shapes import SHAPE_CLASSES, make_class_zip

MB = 1024**2


def org_bytes(organization) -> int:
    """The bytes of every file under the organization's storage folder, as the disk has them."""
    folder = Path(settings.MEDIA_ROOT, "orgs", str(organization.pk))
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _folders, files in os.walk(folder)
        for name in files
    )


def set_quota(organization, quota: int) -> None:
    quota_override_set(organization=organization, storage_bytes=quota)


def ingest(tenant, data: bytes, name: str = "shapes") -> DatasetVersion:
    version = dataset_create(
        organization=tenant.organization, user=tenant.user, name=name, upload=zip_upload(data)
    )
    ingested = dataset_version_ingest(version_id=version.pk)
    assert ingested is not None
    return ingested


# --- the pixel bomb ---------------------------------------------------------------------------


@pytest.mark.parametrize("processes", [1, 2])
def test_a_bomb_of_images_under_the_pixel_limit_is_stopped_by_the_quota_keeping_nothing(
    tenant, outsider, settings, processes
):
    # Twelve 30-megapixel PNGs pass the 40-megapixel limit one by one; decoded, each is 90 MB.
    settings.LEPTON_INGEST_PROCESSES = processes
    settings.LEPTON_PROGRESS_INTERVAL = 0
    data = bomb_zip(width=6000, height=5000, good_per_class=22)
    assert len(data) < 300 * 1024
    outsider_version = ingest(outsider, make_class_zip(per_class=4))
    outsider_used = organization_storage_used(organization=outsider.organization)
    set_quota(tenant.organization, 150 * MB)

    version = ingest(tenant, data, name="bomb")

    assert version.status == JobStatus.FAILED
    assert version.message.startswith("Storing the images decoded from 'shapes.zip' would add")
    assert "of its 150 MB storage quota" in version.message
    assert (
        "Delete datasets or models you no longer need, or ask an owner to have the platform's "
        "administrators raise the quota." in version.message
    )
    assert "kept nothing, the upload included" in version.message
    # It stopped at the second bomb: the first (86 MB decoded) fitted, the next did not.
    added = re.search(r"would add ([0-9.]+) MB", version.message)
    assert added is not None and 2 * 85.8 < float(added.group(1)) < 2 * 85.8 + 1
    # Nothing is left: no item rows, no packs, not even the upload; nothing counted.
    assert not DatasetItem.objects.for_organization(tenant.organization).exists()
    assert org_bytes(tenant.organization) == 0
    assert version.stored_bytes == 0 and version.source_size == 0 and not version.source
    assert organization_storage_used(organization=tenant.organization) == 0
    # The other organization's datasets are its own, untouched.
    assert organization_storage_used(organization=outsider.organization) == outsider_used
    assert org_bytes(outsider.organization) == outsider_used > 0
    assert (
        DatasetVersion.objects.for_organization(outsider.organization)
        .get(pk=outsider_version.pk)
        .is_ready
    )


def test_the_same_images_under_the_quota_are_stored_and_counted_as_on_disk(tenant, settings):
    settings.LEPTON_INGEST_PROCESSES = 2
    # Three 6-megapixel images (18 MB each decoded) among 66 small ones, under a 200 MB quota.
    set_quota(tenant.organization, 200 * MB)

    version = ingest(tenant, bomb_zip(width=3000, height=2000, bombs=3, good_per_class=22))

    assert version.status == JobStatus.SUCCEEDED, version.message
    assert version.item_count == 3 + 22 * len(SHAPE_CLASSES)
    assert version.stored_bytes > 3 * 3000 * 2000 * 3
    assert organization_storage_used(organization=tenant.organization) == org_bytes(
        tenant.organization
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_the_issues_bomb_with_the_pixel_limit_is_refused_with_nothing_decoded_kept(
    tenant, settings
):
    # The issue's zip: twelve 88-megapixel PNGs, some 131 KB. The pixel limit skips each one
    # from its header; the version fails with nothing decoded stored, only the upload counted.
    set_quota(tenant.organization, 1024**3)
    data = bomb_zip(width=11_000, height=8_000)
    assert len(data) < 200 * 1024

    version = ingest(tenant, data, name="bomb")

    assert version.status == JobStatus.FAILED
    assert len(version.skipped) == 12
    assert version.stored_bytes == 0
    assert organization_storage_used(organization=tenant.organization) == len(data)
    assert org_bytes(tenant.organization) == len(data)


def test_a_new_version_whose_images_go_over_the_quota_keeps_nothing(tenant, settings):
    settings.LEPTON_PROGRESS_INTERVAL = 0
    base = ingest(tenant, make_class_zip(per_class=4))
    assert base.is_ready
    used = organization_storage_used(organization=tenant.organization)
    assert used == org_bytes(tenant.organization)
    set_quota(tenant.organization, used + 30 * MB)
    archive = zip_bytes([(f"circle/big_{i}.png", solid_png(3000, 2000, i)) for i in range(3)])

    derived = dataset_version_derive(
        base=base, user=tenant.user, add_archive=zip_upload(archive, name="more.zip")
    )
    derived = dataset_version_ingest(version_id=derived.pk)

    assert derived.status == JobStatus.FAILED
    assert "Storing the images decoded from 'more.zip'" in derived.message
    assert organization_storage_used(organization=tenant.organization) == used
    assert org_bytes(tenant.organization) == used
    assert (
        not DatasetItem.objects.for_organization(tenant.organization)
        .filter(version=derived)
        .exists()
    )


def test_a_decoding_process_writes_nothing_past_its_allowance(tmp_path):
    # Small enough to be their own thumbnails: each stores the same number of bytes.
    images = [solid_png(120, 100, i) for i in range(3)]
    store_batch(images[:1], Destination(folder=str(tmp_path / "one")), 0)
    first = (tmp_path / "one" / "00000.pack").stat().st_size
    allowance = Allowance(first + first // 2)

    results = store_batch(
        images, Destination(folder=str(tmp_path / "packs")), 0, allowance=allowance
    )

    assert not isinstance(results[0], OverAllowance)
    assert results[1] == OverAllowance(first)
    assert results[2] == OverAllowance(0)  # stopped: not even decoded
    assert allowance.stopped and allowance.used == first and allowance.refused == first
    assert (tmp_path / "packs" / "00000.pack").stat().st_size == first


# --- what is counted --------------------------------------------------------------------------


def test_the_used_figure_is_the_bytes_on_disk_with_versions_models_and_deletions(
    tenant, outsider, django_capture_on_commit_callbacks
):
    first = ingest(tenant, make_class_zip(per_class=12))
    assert first.is_ready
    # A new version shares its parent's stored images: only its own are counted once more.
    derived = dataset_version_derive(
        base=first,
        user=tenant.user,
        add_archive=zip_upload(zip_bytes(class_images(2, seed=5)), name="more.zip"),
    )
    derived = dataset_version_ingest(version_id=derived.pk)
    assert derived.is_ready
    organization = tenant.organization
    assert organization_storage_used(organization=organization) == org_bytes(organization)
    with django_capture_on_commit_callbacks(execute=True):  # the checkpoint goes on commit
        model = trained_model_version(tenant, derived, epochs=2)
    with tenant_scope(organization):
        assert ModelVersion.objects.get(pk=model.pk).file_bytes == model.file.size > 0
        assert TrainingRun.objects.get(pk=model.run_id).checkpoint_bytes == 0
    assert organization_storage_used(organization=organization) == org_bytes(organization)
    assert organization_storage_used(organization=outsider.organization) == 0

    other = ingest(tenant, make_class_zip(per_class=3, seed=9), name="other")
    before = organization_storage_used(organization=organization)
    with django_capture_on_commit_callbacks(execute=True):
        deleted = dataset_delete(dataset=other.dataset, user=tenant.user, role=Role.OWNER)

    assert deleted.freed_bytes > 0
    assert organization_storage_used(organization=organization) == before - deleted.freed_bytes
    assert organization_storage_used(organization=organization) == org_bytes(organization)


def test_a_checkpoint_over_the_quota_fails_the_run_with_the_quota_message(
    tenant, django_capture_on_commit_callbacks
):
    version = ingest(tenant, make_class_zip(per_class=12))
    used = organization_storage_used(organization=tenant.organization)
    set_quota(tenant.organization, used + 1000)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ModelVersion.DoesNotExist):
        trained_model_version(tenant, version, epochs=2)

    run = TrainingRun.objects.for_organization(tenant.organization).get()
    assert run.status == JobStatus.FAILED
    assert run.message.startswith("This training run's checkpoint would add")
    assert f"holds {human_size(used)} of its {human_size(used + 1000)} storage quota" in (
        run.message
    )
    assert run.checkpoint == "" and run.checkpoint_bytes == 0
    assert organization_storage_used(organization=tenant.organization) == used
    assert org_bytes(tenant.organization) == used


def test_an_upload_over_the_quota_is_refused_naming_quota_use_and_who_raises_it(api, tenant):
    data = make_class_zip(per_class=4)
    set_quota(tenant.organization, len(data) - 1)

    r = api.post("/api/v1/datasets/", {"name": "shapes", "file": zip_upload(data)})

    assert r.status_code == 403, r.content
    error = r.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["message"] == (
        f"The upload 'shapes.zip' would add {human_size(len(data))} to your organization's "
        f"storage, which holds 0 bytes of its {human_size(len(data) - 1)} storage quota. "
        "Delete datasets or models you no longer need, or ask an owner to have the platform's "
        "administrators raise the quota."
    )
    assert org_bytes(tenant.organization) == 0


def test_uploaded_weights_count_and_replacing_them_counts_only_the_difference(tenant):
    import torch

    from apps.core.errors import QuotaExceeded
    from apps.training.services import model_config_create, model_config_weights_attach
    from workers.ml.architectures import build_model

    version = ingest(tenant, make_class_zip(per_class=4))

    def model(name: str):
        return model_config_create(
            organization=tenant.organization,
            user=tenant.user,
            name=name,
            template="leptonnet",
            dataset_version=version,
            hyperparameters={"epochs": 1, "batch_size": 16},
        )

    buffer = io.BytesIO()
    torch.save(build_model("leptonnet", num_classes=3).state_dict(), buffer)
    weights = buffer.getvalue()
    used = organization_storage_used(organization=tenant.organization)
    set_quota(tenant.organization, used + len(weights))

    def attach(config, name: str):
        upload = SimpleUploadedFile(name, weights, content_type="application/octet-stream")
        return model_config_weights_attach(model_config=config, upload=upload, user=tenant.user)

    first = attach(model("first"), "first.pth")
    assert organization_storage_used(organization=tenant.organization) == used + len(weights)
    assert org_bytes(tenant.organization) == used + len(weights)
    # Weights that replace others add nothing, even to an organization at its quota.
    attach(first, "again.pth")
    assert organization_storage_used(organization=tenant.organization) == used + len(weights)

    with pytest.raises(QuotaExceeded) as refused:
        attach(model("second"), "second.pth")
    assert refused.value.message.startswith(
        f"The weights 'second.pth' would add {human_size(len(weights))} to your organization's "
        f"storage, which holds {human_size(used + len(weights))} of its "
        f"{human_size(used + len(weights))} storage quota."
    )
    assert org_bytes(tenant.organization) == used + len(weights)


def test_a_table_over_the_quota_fails_its_version_keeping_nothing(tenant, settings):
    from tests.support.markets import market_csv

    data = market_csv()
    set_quota(tenant.organization, len(data) + 10)  # the upload fits; its table (+ split) not
    upload = SimpleUploadedFile("markets.csv", data, content_type="text/csv")
    version = dataset_create(
        organization=tenant.organization,
        user=tenant.user,
        name="market",
        upload=upload,
        kind="tabular",
    )

    version = dataset_version_ingest(version_id=version.pk)

    assert version.status == JobStatus.FAILED
    assert version.message.startswith("Storing the table read from 'markets.csv' would add")
    assert "kept nothing, the upload included" in version.message
    assert not version.data_file and not version.source
    assert organization_storage_used(organization=tenant.organization) == 0
    assert org_bytes(tenant.organization) == 0
