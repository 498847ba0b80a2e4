"""Splits of image versions: stratified per class, deterministic, from checked ratios."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from apps.core.errors import InvalidInput
from apps.datasets.ingest import TEST_SHARE, VALIDATION_SHARE, assign_splits, split_ratios
from apps.datasets.models import Split


@pytest.mark.parametrize("sizes", [[1, 2, 3, 4, 7, 12, 20, 101], [3, 3], [50]])
def test_splits_are_stratified_and_do_not_depend_on_order(sizes):
    labels_by_key = {
        f"{label}-{i:04d}": label
        for label, n in zip((f"class{k}" for k in range(len(sizes))), sizes, strict=True)
        for i in range(n)
    }
    splits = assign_splits(labels_by_key)

    keys = list(labels_by_key)
    random.Random(1).shuffle(keys)
    shuffled = {key: labels_by_key[key] for key in keys}
    assert assign_splits(shuffled) == splits
    assert set(splits) == set(labels_by_key)

    for label, n in zip((f"class{k}" for k in range(len(sizes))), sizes, strict=True):
        per_split = Counter(splits[k] for k, v in labels_by_key.items() if v == label)
        if n >= 3:
            assert per_split[Split.TEST] >= 1
            assert per_split[Split.VALIDATION] >= 1
            assert per_split[Split.TRAIN] >= 1
            # About the published shares, rounded to whole items.
            assert abs(per_split[Split.TEST] - n * TEST_SHARE) <= 1
            assert abs(per_split[Split.VALIDATION] - n * VALIDATION_SHARE) <= 1
        else:
            assert per_split == Counter({Split.TRAIN: n})


def test_a_different_seed_gives_a_different_split():
    labels_by_key = {f"k{i}": "a" for i in range(40)}
    assert assign_splits(labels_by_key, seed=0) != assign_splits(labels_by_key, seed=1)


def test_splits_of_new_images_are_deterministic():
    existing = {"a": {Split.TRAIN: 8, Split.VALIDATION: 2, Split.TEST: 2}}
    new = {f"k{i}": "a" for i in range(8)} | {f"b{i}": "b" for i in range(5)}
    first = assign_splits(new, seed=3, existing=existing)
    assert first == assign_splits(dict(reversed(list(new.items()))), seed=3, existing=existing)
    assert Counter(first[k] for k in new if k.startswith("k")) == {
        Split.TRAIN: 6,
        Split.VALIDATION: 1,
        Split.TEST: 1,
    }
    assert Counter(first[k] for k in new if k.startswith("b")) == {
        Split.TRAIN: 3,
        Split.VALIDATION: 1,
        Split.TEST: 1,
    }


def test_split_ratios_default_to_70_15_15():
    assert split_ratios(None) == {"train": 0.7, "validation": 0.15, "test": 0.15}


@pytest.mark.parametrize(
    "raw",
    [
        {"train": 0.5, "validation": 0.2, "test": 0.2},  # adds up to 0.9
        {"train": 0.0, "validation": 0.5, "test": 0.5},  # nothing to train on
        {"train": 1.2, "validation": -0.2, "test": 0.0},
        {"train": 0.7, "validation": 0.15, "holdout": 0.15},
        {"train": "a lot"},
    ],
)
def test_split_ratios_that_make_no_sense_are_refused_naming_the_field(raw):
    with pytest.raises(InvalidInput) as refused:
        split_ratios(raw)
    assert refused.value.field == "split_ratios"
    assert "add up to 1" in str(refused.value)
