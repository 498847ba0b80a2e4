"""The health report: computed at ingestion, in the shape the version page renders, and
blocking training while it lists a problem that would ruin it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.errors import InvalidInput
from apps.core.jobs import JobStatus
from apps.datasets.health import health_report
from apps.datasets.models import DatasetVersion
from apps.datasets.services import dataset_create, dataset_version_ingest
from tests.support.archives import shape, tar_bytes, zip_bytes

KEYS = {
    "classes",
    "imbalance_ratio",
    "min_per_class",
    "small_classes",
    "duplicates",
    "leakage",
    "sizes",
    "formats",
    "skipped",
    "problems",
    "trainable",
}
BUCKETS = ["≤64", "≤128", "≤256", "≤512", "≤1024", "≤2048", ">2048"]


def ingested(tenant, entries: list, *, tar: bool = False) -> DatasetVersion:
    data = tar_bytes(entries) if tar else zip_bytes(entries)
    version = dataset_create(
        organization=tenant.organization,
        user=tenant.user,
        name="health",
        upload=SimpleUploadedFile("h.tar" if tar else "h.zip", data),
    )
    version = dataset_version_ingest(version_id=version.pk)
    assert version.status == JobStatus.SUCCEEDED, version.message
    return version


def images(label: str, n: int, *, kind: str = "circle", start: int = 0, **kwargs) -> list:
    return [(f"{label}/{i}.png", shape(kind, start + i, **kwargs)) for i in range(n)]


def codes(version: DatasetVersion, severity: str | None = None) -> list[str]:
    return [
        p["code"]
        for p in version.health["problems"]
        if severity is None or p["severity"] == severity
    ]


def problem(version: DatasetVersion, code: str) -> dict:
    return next(p for p in version.health["problems"] if p["code"] == code)


def test_a_healthy_version_has_the_whole_report(ready_version, outsider):
    health = ready_version.health
    assert set(health) == KEYS
    assert health["classes"] == ready_version.class_counts
    assert all(
        set(c) == {"train", "validation", "test", "total"} for c in health["classes"].values()
    )
    assert health["imbalance_ratio"] == 1.0
    assert health["min_per_class"] == 10
    assert health["small_classes"] == [] and health["duplicates"] == [] and health["leakage"] == []
    assert health["sizes"]["width"] == {"min": 32, "median": 32, "max": 32}
    assert health["sizes"]["height"] == {"min": 32, "median": 32, "max": 32}
    assert [b["bucket"] for b in health["sizes"]["histogram"]] == BUCKETS
    assert health["sizes"]["histogram"][0]["count"] == 36
    assert health["formats"] == {"PNG": 36}
    assert health["skipped"] == 0
    assert health["problems"] == []
    assert health["trainable"] is True


def test_sizes_are_summarised_by_the_longer_side(tenant, outsider):
    entries = (
        images("a", 3, size=32)
        + images("b", 3, kind="square", size=100)
        + [("b/wide.jpg", shape("square", 9, size=300, fmt="JPEG"))]
    )
    sizes = ingested(tenant, entries).health["sizes"]
    assert sizes["width"] == {"min": 32, "median": 100, "max": 300}
    assert {b["bucket"]: b["count"] for b in sizes["histogram"]} == {
        "≤64": 3,
        "≤128": 3,
        "≤256": 0,
        "≤512": 1,
        "≤1024": 0,
        "≤2048": 0,
        ">2048": 0,
    }


def test_a_single_class_blocks_training(tenant, outsider):
    version = ingested(tenant, images("cat", 12))
    assert codes(version, "blocking") == ["single_class"]
    assert "('cat')" in problem(version, "single_class")["message"]
    assert "another class" in problem(version, "single_class")["message"]
    assert version.health["trainable"] is False
    from apps.training.services import model_config_create

    with pytest.raises(InvalidInput) as caught:
        model_config_create(
            organization=tenant.organization,
            user=tenant.user,
            name="m",
            template="leptonnet",
            dataset_version=version,
        )
    assert "cannot be trained on yet" in caught.value.message
    assert problem(version, "single_class")["message"] in caught.value.message


def test_classes_too_small_to_hold_out_a_test_image_block_training(tenant, outsider):
    version = ingested(tenant, images("a", 2) + images("b", 2, kind="square"))
    assert codes(version, "blocking") == ["empty_split"]
    message = problem(version, "empty_split")["message"]
    assert message.startswith("The test split is empty.") and "at least 3 images" in message
    assert "empty_validation" in codes(version, "warning")
    assert version.health["trainable"] is False


def test_a_manifest_without_test_rows_blocks_training(tenant, outsider):
    entries = images("img", 8)
    manifest = "file,label,split\n" + "".join(
        f"{name},{'a' if i % 2 else 'b'},{'train' if i < 6 else 'validation'}\n"
        for i, (name, _data) in enumerate(entries)
    )
    version = ingested(tenant, entries + [("manifest.csv", manifest.encode())], tar=True)
    assert version.split_source == "manifest"
    assert codes(version, "blocking") == ["empty_split"]
    assert "split column" in problem(version, "empty_split")["message"]


def test_small_classes_and_imbalance_are_warnings(tenant, outsider, settings):
    settings.LEPTON_MIN_IMAGES_PER_CLASS = 5
    version = ingested(tenant, images("big", 44) + images("tiny", 4, kind="square"))
    health = version.health
    assert health["small_classes"] == ["tiny"] and health["min_per_class"] == 5
    assert health["imbalance_ratio"] == 11.0
    assert codes(version, "warning") == ["small_classes", "imbalance"]
    assert "'tiny'" in problem(version, "small_classes")["message"]
    imbalance = problem(version, "imbalance")["message"]
    assert "'big', 44 images" in imbalance and "'tiny', 4" in imbalance
    assert health["trainable"] is True


def test_duplicates_are_listed_with_every_path(tenant, outsider):
    entries = images("a", 4) + images("b", 4, kind="square")
    entries += [("b/copy of a0.png", entries[0][1]), ("a/again.png", entries[0][1])]
    version = ingested(tenant, entries)
    digest = version.health["duplicates"][0]["sha256"]
    assert version.health["duplicates"] == [
        {"sha256": digest, "paths": ["a/0.png", "b/copy of a0.png", "a/again.png"]}
    ]
    assert version.health["leakage"] == []
    assert "2 images are exact copies" in problem(version, "duplicates")["message"]
    assert version.health["skipped"] == 2
    assert codes(version, "warning") == ["small_classes", "duplicates", "skipped_files"]


def test_the_same_image_in_train_and_test_is_leakage(tenant, outsider):
    entries = images("img", 10)
    entries.append(("img/same as 0.png", entries[0][1]))
    splits = ["train"] * 6 + ["validation"] * 2 + ["test"] * 2 + ["test"]
    manifest = "file,label,split\n" + "".join(
        f"{name},{'a' if i % 2 else 'b'},{split}\n"
        for i, ((name, _data), split) in enumerate(zip(entries, splits, strict=True))
    )
    version = ingested(tenant, entries + [("manifest.csv", manifest.encode())])
    leak = version.health["leakage"]
    assert leak == [
        {
            "sha256": version.health["duplicates"][0]["sha256"],
            "paths": ["img/0.png", "img/same as 0.png"],
            "splits": ["train", "test"],
        }
    ]
    assert "leakage" in codes(version, "warning")
    assert "more than one split" in problem(version, "leakage")["message"]
    assert version.skipped == [
        {"path": "img/same as 0.png", "reason": "exact duplicate of img/0.png"}
    ]


def test_recomputing_the_report_gives_the_same_report(ready_version, outsider):
    assert health_report(ready_version) == ready_version.health
