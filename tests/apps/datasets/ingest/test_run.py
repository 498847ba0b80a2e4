"""Ingestion: counts and splits that add up, deterministic stratified splits, safe re-runs."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from apps.core.jobs import FINISHED, JobBusy, JobStatus
from apps.core.scoping import tenant_scope
from apps.datasets.ingest import PARALLEL_MIN_IMAGES
from apps.datasets.models import DatasetItem, DatasetVersion, Split
from apps.datasets.services import dataset_create, dataset_version_ingest
from apps.datasets.stored import item_read
from tests.conftest import zip_upload
from tests.support.shapes import SHAPE_CLASSES


def packs_folder(version: DatasetVersion) -> Path:
    return Path(settings.MEDIA_ROOT, f"orgs/{version.organization_id}/packs/{version.pk}")


def stored_files(version: DatasetVersion) -> dict[str, int]:
    """Every image file stored for the version's organization (shared by its versions): its
    name under the organization's folder and its size."""
    folder = Path(settings.MEDIA_ROOT, f"orgs/{version.organization_id}")
    return {
        str(path.relative_to(folder)): path.stat().st_size
        for kind in ("packs", "blobs", "thumbs")
        for path in (folder / kind).rglob("*")
        if path.is_file()
    }


def queued_version(tenant, **shape_kwargs) -> DatasetVersion:
    return dataset_create(
        organization=tenant.organization,
        user=tenant.user,
        name="shapes",
        upload=zip_upload(**shape_kwargs),
    )


def test_it_counts_every_item_once_per_class_and_split(ready_version, outsider):
    counts = ready_version.class_counts
    assert sorted(counts) == sorted(SHAPE_CLASSES)
    with tenant_scope(ready_version.organization):
        items = list(DatasetItem.objects.filter(version=ready_version))
    assert len(items) == ready_version.item_count == 12 * len(SHAPE_CLASSES)

    stored = Counter((item.label, item.split) for item in items)
    for label, per_class in counts.items():
        assert per_class["total"] == 12
        splits = {s: per_class[s] for s in Split.values}
        assert sum(splits.values()) == per_class["total"]
        for split, n in splits.items():
            assert stored[(label, split)] == n
    assert sum(c["total"] for c in counts.values()) == ready_version.item_count
    # Each image reads back from its pack as the PNG its hash names; the packs are what the
    # version added to storage, and nothing else was written.
    for item in items:
        assert hashlib.sha256(item_read(item)).hexdigest() == item.sha256
    packs = {item.file.name for item in items}
    assert all(name.startswith(f"orgs/{ready_version.organization_id}/packs/") for name in packs)
    assert ready_version.stored_bytes == sum(default_storage.size(name) for name in packs)
    assert len(stored_files(ready_version)) == len(packs)


def test_it_marks_the_version_ready_with_a_message(ready_version):
    assert ready_version.status == JobStatus.SUCCEEDED
    assert ready_version.is_ready
    assert ready_version.progress == 1.0
    assert ready_version.attempts == 1
    assert ready_version.lease_expires_at is None
    assert str(ready_version.item_count) in ready_version.message
    assert ready_version.skipped == []


def worker_died(version: DatasetVersion) -> None:
    """The version's first attempt started ten minutes ago and its lease ran out."""
    DatasetVersion.all_tenants.filter(pk=version.pk).update(
        status=JobStatus.RUNNING,
        attempts=1,
        started_at=timezone.now() - timedelta(minutes=10),
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )


def test_the_same_images_get_the_same_splits_in_another_upload(tenant, outsider, ready_version):
    other = dataset_version_ingest(version_id=queued_version(outsider).pk)
    assert other.class_counts == ready_version.class_counts
    mine = dict(
        DatasetItem.all_tenants.filter(version=ready_version).values_list("sha256", "split")
    )
    theirs = dict(DatasetItem.all_tenants.filter(version=other).values_list("sha256", "split"))
    assert mine == theirs


def test_ingesting_twice_changes_nothing(ready_version):
    before_items = set(
        DatasetItem.all_tenants.filter(version=ready_version).values_list("pk", "file")
    )
    before_files = stored_files(ready_version)

    assert dataset_version_ingest(version_id=ready_version.pk) is None

    after = DatasetVersion.all_tenants.get(pk=ready_version.pk)
    assert after.attempts == ready_version.attempts == 1
    assert after.status == JobStatus.SUCCEEDED
    assert after.class_counts == ready_version.class_counts
    assert (
        set(DatasetItem.all_tenants.filter(version=ready_version).values_list("pk", "file"))
        == before_items
    )
    assert stored_files(ready_version) == before_files


def test_it_reclaims_a_version_whose_worker_died_and_starts_it_over(tenant, outsider):
    version = queued_version(tenant, per_class=5)
    # A first worker got half-way: it stored an image and its item row, then died.
    done = dataset_version_ingest(version_id=queued_version(tenant, per_class=5).pk)
    first = DatasetItem.all_tenants.filter(version=done).first()
    files_before = stored_files(done)
    DatasetItem.all_tenants.create(
        organization=tenant.organization,
        version=version,
        file=first.file.name,
        original_name=first.original_name,
        label=first.label,
        split=Split.TRAIN,
        width=32,
        height=32,
        sha256="0" * 64,
    )
    worker_died(version)

    again = dataset_version_ingest(version_id=version.pk)

    assert again.status == JobStatus.SUCCEEDED
    assert again.attempts == 2
    assert again.item_count == 5 * len(SHAPE_CLASSES)
    items = DatasetItem.all_tenants.filter(version=version)
    assert items.count() == again.item_count
    assert not items.filter(sha256="0" * 64).exists()
    assert items.values("sha256").distinct().count() == again.item_count
    # The same images are stored once: the re-run reused them, kept no pack of its own and
    # deleted none of the other version's.
    assert stored_files(again) == files_before
    assert set(items.values_list("file", flat=True)) == set(
        DatasetItem.all_tenants.filter(version=done).values_list("file", flat=True)
    )
    assert default_storage.exists(first.file.name)
    # Both versions hold the same images: the second one added no stored bytes.
    assert again.stored_bytes == 0 < done.stored_bytes


def test_it_leaves_a_version_alone_while_its_worker_holds_a_live_lease(tenant, outsider):
    version = queued_version(tenant, per_class=3)
    DatasetVersion.all_tenants.filter(pk=version.pk).update(
        status=JobStatus.RUNNING,
        attempts=1,
        lease_expires_at=timezone.now() + timedelta(seconds=60),
    )
    with pytest.raises(JobBusy):
        dataset_version_ingest(version_id=version.pk)
    assert not DatasetItem.all_tenants.filter(version=version).exists()
    assert DatasetVersion.all_tenants.get(pk=version.pk).attempts == 1


def test_the_api_lists_the_items_of_one_split(api, ready_version, outsider):
    expected = sum(c[Split.TEST] for c in ready_version.class_counts.values())
    r = api.get(f"/api/v1/dataset-versions/{ready_version.pk}/items/?split=test")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == expected
    assert {item["split"] for item in body["results"]} == {"test"}
    assert {item["id"] for item in body["results"]} == {
        str(pk)
        for pk in DatasetItem.all_tenants.filter(
            version=ready_version, split=Split.TEST
        ).values_list("pk", flat=True)
    }


def test_the_api_filters_items_by_label(api, ready_version, outsider):
    r = api.get(f"/api/v1/dataset-versions/{ready_version.pk}/items/?label=square&split=train")
    assert r.status_code == 200
    assert r.json()["count"] == ready_version.class_counts["square"][Split.TRAIN]
    assert {(i["label"], i["split"]) for i in r.json()["results"]} == {("square", "train")}


def test_the_api_refuses_an_unknown_split(api, ready_version):
    r = api.get(f"/api/v1/dataset-versions/{ready_version.pk}/items/?split=bogus")
    assert r.status_code == 400
    error = r.json()["error"]
    assert "split" in error["fields"]
    assert "'bogus'" in error["message"]
    for split in Split.values:
        assert split in error["message"]


def test_the_outsider_cannot_see_the_version_or_its_items(client, ready_version, outsider):
    for path in (
        f"/api/v1/dataset-versions/{ready_version.pk}/",
        f"/api/v1/dataset-versions/{ready_version.pk}/items/",
        f"/api/v1/dataset-versions/{ready_version.pk}/items/?split=test",
    ):
        r = client.get(path, **outsider.auth)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"
    r = client.get("/api/v1/dataset-versions/", **outsider.auth)
    assert r.json()["count"] == 0


@pytest.mark.e2e
def test_the_celery_worker_decodes_in_worker_processes(tmp_path, monkeypatch):
    """The real prefork worker (a daemonic process) runs an ingestion that spreads decoding over
    spawned worker processes, and the version comes out right."""
    from tests.e2e.stack import start_stack
    from tests.e2e.test_journey_api import signup, wait_for
    from tests.support.archives import class_images, tar_bytes

    monkeypatch.setenv("LEPTON_INGEST_PROCESSES", "2")
    per_class = PARALLEL_MIN_IMAGES // len(SHAPE_CLASSES) + 1
    archive = tar_bytes(class_images(per_class), gz=True)
    stack = start_stack("embedded", tmp_path)
    try:
        api = signup(stack.base_url, "owner@pool.example", "Pool Party")
        response = api.post(
            f"{stack.base_url}/api/v1/datasets/",
            data={"name": "many"},
            files={"file": ("many.tar.gz", archive)},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        url = f"{stack.base_url}/api/v1/dataset-versions/{response.json()['id']}/"
        seen = wait_for(lambda: api.get(url, timeout=30).json(), lambda v: v["status"] in FINISHED)
        version = seen[-1]
        assert version["status"] == JobStatus.SUCCEEDED, (version, stack.log_tail())
        assert version["item_count"] == per_class * len(SHAPE_CLASSES)
        log = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker*.log"))
        assert f"decoding {version['item_count']} images in 2 processes" in log
        assert "daemonic processes are not allowed" not in log
    finally:
        stack.stop()


def test_packs_an_interrupted_attempt_left_are_deleted_and_written_again(tenant, outsider):
    version = queued_version(tenant, per_class=4)
    # A first worker wrote part of a pack, then died.
    folder = packs_folder(version)
    folder.mkdir(parents=True)
    (folder / "a1-00000.pack").write_bytes(b"\x89PNG cut short")
    worker_died(version)

    again = dataset_version_ingest(version_id=version.pk)

    assert again.status == JobStatus.SUCCEEDED and again.attempts == 2
    assert not (folder / "a1-00000.pack").exists()
    items = list(DatasetItem.all_tenants.filter(version=version))
    assert len(items) == again.item_count == 4 * len(SHAPE_CLASSES)
    for item in items:
        assert item.file.name.startswith(f"orgs/{tenant.organization.pk}/packs/{version.pk}/a2-")
        assert hashlib.sha256(item_read(item)).hexdigest() == item.sha256
    assert again.stored_bytes == sum(p.stat().st_size for p in folder.iterdir())


def test_an_ingestion_that_fails_half_way_keeps_no_pack(tenant, outsider, settings):
    from tests.support.archives import class_images, zip_bytes

    entries = class_images(80)
    version = dataset_create(
        organization=tenant.organization,
        user=tenant.user,
        name="too big",
        upload=zip_upload(zip_bytes(entries)),
    )
    # The archive turns out to unpack to more than allowed only once half of it was decoded.
    settings.LEPTON_MAX_ARCHIVE_BYTES = sum(len(data) for _name, data in entries) // 2

    failed = dataset_version_ingest(version_id=version.pk)

    assert failed.status == JobStatus.FAILED
    assert "unpacks to more than" in failed.message
    assert not packs_folder(version).exists()
    assert not DatasetItem.all_tenants.filter(version=version).exists()
