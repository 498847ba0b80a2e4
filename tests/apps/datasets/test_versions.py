"""Derived versions: the earlier version's items + additions - removals + relabels.

The earlier version is never touched; the new one copies its rows (same stored images), decodes
only what was added, keeps existing splits and assigns new ones. Requests are checked first and
a refused one stores nothing. Splits are deterministic; decoding in worker processes gives the
same items as decoding in the worker itself.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.errors import InvalidInput, PayloadTooLarge, QuotaExceeded
from apps.core.jobs import JobStatus
from apps.datasets.ingest import PARALLEL_MIN_IMAGES, split_sizes
from apps.datasets.models import DatasetItem, DatasetKind, DatasetVersion, Split
from apps.datasets.services import dataset_create, dataset_version_ingest
from apps.datasets.stored import item_read
from apps.datasets.versions import dataset_version_derive
from apps.quotas.services import quota_override_set
from tests.support.archives import class_images, shape, tar_bytes, zip_bytes

RATIOS = {"train": 0.7, "validation": 0.15, "test": 0.15}


def image_file(name: str, label: str = "circle", seed: int = 0) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, shape(label, 5000 + seed), content_type="image/png")


def rows(version: DatasetVersion) -> dict[str, tuple]:
    """{original name: (label, split, sha256, file)} of the version's items."""
    return {
        name: tuple(rest)
        for name, *rest in DatasetItem.all_tenants.filter(version=version).values_list(
            "original_name", "label", "split", "sha256", "file"
        )
    }


def snapshot(version: DatasetVersion) -> tuple:
    version = DatasetVersion.all_tenants.get(pk=version.pk)
    return (
        rows(version),
        version.class_counts,
        version.health,
        version.item_count,
        version.changes,
        version.skipped,
    )


def media_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()}


def items_of(version: DatasetVersion) -> list[DatasetItem]:
    return list(DatasetItem.all_tenants.filter(version=version).order_by("original_name"))


def test_it_adds_removes_and_relabels_in_a_new_version(tenant, outsider, ready_version):
    before = snapshot(ready_version)
    base_items = items_of(ready_version)
    gone, renamed = base_items[0], base_items[1]

    version = dataset_version_derive(
        base=ready_version,
        user=tenant.user,
        add_images=[image_file("new circle.png"), image_file("star.png", "triangle", 1)],
        add_labels={"new circle.png": "circle", "star.png": "star"},
        remove=[str(gone.pk)],
        relabel={renamed.original_name: "renamed"},
    )

    assert version.status == JobStatus.QUEUED
    assert (version.number, version.parent_id, version.source_kind) == (
        2,
        ready_version.pk,
        "derived",
    )
    assert version.changes["added"] == 2
    assert version.changes["removed"] == 1 and version.changes["relabelled"] == 1
    assert version.changes["remove"] == [str(gone.pk)]
    assert version.changes["relabel"] == {str(renamed.pk): "renamed"}
    version = dataset_version_ingest(version_id=version.pk)
    assert version.status == JobStatus.SUCCEEDED, version.message

    new, old = rows(version), rows(ready_version)
    assert version.item_count == len(new) == len(old) - 1 + 2
    assert gone.original_name not in new
    assert new[renamed.original_name][0] == "renamed"
    assert new[renamed.original_name][1:] == old[renamed.original_name][1:]  # split, hash, file
    for name, (label, split, digest, file) in old.items():
        if name not in (gone.original_name, renamed.original_name):
            assert new[name] == (label, split, digest, file)  # same split, same stored image
    assert new["star.png"][0] == "star" and new["new circle.png"][0] == "circle"
    assert version.class_counts["star"]["total"] == 1
    assert version.changes["added"] == 2
    # The earlier version is exactly as it was.
    assert snapshot(ready_version) == before


def test_only_the_new_images_are_decoded_and_stored(tenant, outsider, ready_version):
    before = media_files()
    version = dataset_version_ingest(
        version_id=dataset_version_derive(
            base=ready_version, user=tenant.user, add_images=[image_file("a.png")], label="circle"
        ).pk
    )
    added = media_files() - before
    blob = default_storage.path(rows(version)["a.png"][3])
    assert Path(blob) in added
    assert all("/added/" in str(p) for p in added - {Path(blob)})  # the upload, kept as sent
    assert version.stored_bytes == Path(blob).stat().st_size


def test_an_archive_adds_class_folders_or_manifest_rows(tenant, outsider, ready_version):
    entries = [
        (f"{label}/{label}{i}.png", shape(kind, 700 + i))
        for label, kind in (("circle", "circle"), ("star", "triangle"))
        for i in range(2)
    ]
    manifest = "file,label,split\n" + "".join(
        f"{name},{name.split('/')[0]},{'test' if i % 2 else 'train'}\n"
        for i, (name, _data) in enumerate(entries)
    )
    archive = SimpleUploadedFile(
        "more.tar.gz", tar_bytes(entries + [("manifest.csv", manifest.encode())], gz=True)
    )
    version = dataset_version_derive(base=ready_version, user=tenant.user, add_archive=archive)
    assert version.source.name.endswith("/v2/source.tar")
    version = dataset_version_ingest(version_id=version.pk)
    assert version.status == JobStatus.SUCCEEDED, version.message
    new = rows(version)
    for i, (name, _data) in enumerate(entries):
        assert new[name][:2] == (name.split("/")[0], "test" if i % 2 else "train")
    assert version.changes["added"] == len(entries)
    assert version.split_source == ready_version.split_source == "auto"


def test_an_added_copy_of_an_existing_image_is_a_duplicate(tenant, outsider, ready_version):
    existing = items_of(ready_version)[0]
    same_pixels = item_read(existing)
    copy = SimpleUploadedFile("again.png", same_pixels)
    version = dataset_version_ingest(
        version_id=dataset_version_derive(
            base=ready_version, user=tenant.user, add_images=[copy], label="circle"
        ).pk
    )
    assert version.skipped == [
        {"path": "again.png", "reason": f"exact duplicate of {existing.original_name}"}
    ]
    assert version.health["duplicates"] == [
        {"sha256": existing.sha256, "paths": [existing.original_name, "again.png"]}
    ]
    assert version.item_count == ready_version.item_count
    assert version.changes["added"] == 0


def test_new_images_fill_what_each_split_lacks(tenant, outsider, ready_version):
    added = [image_file(f"new{i}.png", "circle", i) for i in range(8)]
    version = dataset_version_ingest(
        version_id=dataset_version_derive(
            base=ready_version, user=tenant.user, add_images=added, label="circle"
        ).pk
    )
    counts = version.class_counts["circle"]
    n_test, n_val = split_sizes(20, RATIOS)
    assert (counts["total"], counts["test"], counts["validation"]) == (20, n_test, n_val)
    before = ready_version.class_counts["circle"]
    new_splits = Counter(
        split for name, (_l, split, _s, _f) in rows(version).items() if name.startswith("new")
    )
    assert new_splits[Split.TEST] == n_test - before["test"]
    assert new_splits[Split.VALIDATION] == n_val - before["validation"]


def test_custom_ratios_and_seed_are_kept_by_new_versions(tenant, outsider, ready_version):
    DatasetVersion.all_tenants.filter(pk=ready_version.pk).update(
        split_ratios={"train": 0.5, "validation": 0.25, "test": 0.25}, split_seed=9
    )
    ready_version.refresh_from_db()
    version = dataset_version_ingest(
        version_id=dataset_version_derive(
            base=ready_version, user=tenant.user, add_images=[image_file("x.png")], label="circle"
        ).pk
    )
    assert version.split_seed == 9
    assert version.split_ratios == {"train": 0.5, "validation": 0.25, "test": 0.25}


# --- checked first, nothing stored when refused -------------------------------------------------


@pytest.fixture
def refused(tenant, ready_version):
    """Call derive, expect `error`, and check that nothing was stored."""

    def check(error: type[Exception], phrases: list[str], **kwargs):
        versions, files = DatasetVersion.all_tenants.count(), media_files()
        with pytest.raises(error) as caught:
            dataset_version_derive(base=ready_version, user=tenant.user, **kwargs)
        for phrase in phrases:
            assert phrase in caught.value.message, caught.value.message
        assert DatasetVersion.all_tenants.count() == versions
        assert media_files() == files
        return caught.value

    return check


def test_unknown_items_are_named(refused, outsider):
    refused(
        InvalidInput,
        ["no item", "'nope.png'", "'00000000-0000-0000-0000-000000000000'"],
        remove=["nope.png", "00000000-0000-0000-0000-000000000000"],
    )
    refused(InvalidInput, ["no item", "'ghost.png'"], relabel={"ghost.png": "cat"})


def test_another_organizations_items_are_unknown(refused, outsider):
    other = dataset_create(
        organization=outsider.organization,
        user=outsider.user,
        name="theirs",
        upload=SimpleUploadedFile("t.zip", zip_bytes(class_images(2))),
    )
    dataset_version_ingest(version_id=other.pk)
    theirs = str(DatasetItem.all_tenants.filter(version=other).first().pk)
    refused(InvalidInput, [f"'{theirs}'"], remove=[theirs])


def test_loose_images_need_a_label(refused, outsider):
    error = refused(
        InvalidInput,
        ["No label for", "'b.png'", "'c.png'"],
        add_images=[image_file("a.png"), image_file("b.png"), image_file("c.png")],
        add_labels={"a.png": "circle"},
    )
    assert error.field == "labels"


def test_nothing_to_change_is_refused(refused, outsider):
    refused(InvalidInput, ["Nothing to change"])


def test_an_item_cannot_be_removed_and_relabelled(refused, outsider, ready_version):
    item = items_of(ready_version)[0]
    refused(
        InvalidInput,
        ["both removed and relabelled"],
        remove=[str(item.pk)],
        relabel={str(item.pk): "x"},
    )


def test_removing_everything_is_refused(refused, outsider, ready_version):
    refused(
        InvalidInput,
        ["would hold no images"],
        remove=[str(i.pk) for i in items_of(ready_version)],
    )


def test_a_base_that_is_not_ready_is_refused(tenant, outsider):
    queued = dataset_create(
        organization=tenant.organization,
        user=tenant.user,
        name="pending",
        upload=SimpleUploadedFile("p.zip", zip_bytes(class_images(2))),
    )
    with pytest.raises(InvalidInput, match="is not ready"):
        dataset_version_derive(
            base=queued, user=tenant.user, add_images=[image_file("a.png")], label="x"
        )


def test_too_many_files_in_one_request(refused, outsider, settings):
    settings.LEPTON_MAX_FILES_PER_REQUEST = 2
    error = refused(
        PayloadTooLarge,
        ["3 files", "the limit is 2"],
        add_images=[image_file(f"{i}.png") for i in range(3)],
        label="circle",
    )
    assert error.status_code == 413


def test_files_that_are_no_images_or_too_large(refused, outsider, settings):
    refused(
        InvalidInput,
        ["'notes.txt' is not an image file"],
        add_images=[SimpleUploadedFile("notes.txt", b"hi")],
        label="x",
    )
    settings.LEPTON_MAX_IMAGE_BYTES = 100
    refused(
        PayloadTooLarge,
        ["'a.png' is", "one image may be 100 bytes"],
        add_images=[image_file("a.png")],
        label="x",
    )


def test_a_bad_archive_is_refused_before_anything_is_stored(refused, outsider):
    refused(
        InvalidInput,
        ["'docs.zip'", "no images in class folders"],
        add_archive=SimpleUploadedFile("docs.zip", zip_bytes([("readme.txt", b"hello")])),
    )


def test_the_storage_quota_is_checked(refused, outsider, tenant):
    quota_override_set(organization=tenant.organization, storage_bytes=1)
    refused(QuotaExceeded, ["quota"], add_images=[image_file("a.png")], label="circle")


def test_tabular_datasets_take_no_images(tenant, outsider, ready_version):
    ready_version.dataset.kind = DatasetKind.TABULAR
    with pytest.raises(InvalidInput, match="Only image datasets"):
        dataset_version_derive(base=ready_version, user=tenant.user, remove=["x"])


# --- decoding in worker processes -----------------------------------------------------------------


def test_worker_processes_give_the_same_items_as_one_process(tenant, outsider, settings):
    entries = class_images(PARALLEL_MIN_IMAGES // 3 + 2, seed=3)
    entries.append(("circle/broken.png", b"not an image"))
    entries.append(("square/copy.png", entries[0][1]))
    assert len(entries) >= PARALLEL_MIN_IMAGES
    results = []
    for processes in (1, 2):
        settings.LEPTON_INGEST_PROCESSES = processes
        version = dataset_create(
            organization=tenant.organization,
            user=tenant.user,
            name=f"p{processes}",
            upload=SimpleUploadedFile("many.zip", zip_bytes(entries)),
        )
        version = dataset_version_ingest(version_id=version.pk)
        assert version.status == JobStatus.SUCCEEDED, version.message
        results.append((rows(version), version.skipped, version.class_counts))
    assert results[0] == results[1]
    assert {s["path"] for s in results[0][1]} == {"circle/broken.png", "square/copy.png"}
