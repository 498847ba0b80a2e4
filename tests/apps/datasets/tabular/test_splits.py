"""A table's splits: exact counts, the same for the same seed, from ratios that make sense."""

from __future__ import annotations

import pytest

from apps.core.errors import InvalidInput
from apps.datasets.tabular.splits import assign_splits, split_ratios


def test_it_splits_exactly_and_the_same_way_every_time():
    ratios = split_ratios({})
    first = assign_splits(200, seed=7, ratios=ratios)
    assert first == assign_splits(200, seed=7, ratios=ratios)
    assert first != assign_splits(200, seed=8, ratios=ratios)
    assert (first.count("train"), first.count("validation"), first.count("test")) == (140, 30, 30)
    small = assign_splits(4, seed=0, ratios=ratios)
    assert sorted(small) == ["test", "train", "train", "validation"]


def test_it_checks_split_ratios():
    assert split_ratios({"train": 0.8, "validation": 0.1, "test": 0.1})["train"] == 0.8
    for bad in ({"train": 0.9, "validation": 0.2, "test": 0.1}, {"train": 1, "holdout": 0}):
        with pytest.raises(InvalidInput, match="add up to 1"):
            split_ratios(bad)
