"""The preprocessor: fitted on the training rows, it encodes numbers, gaps and categories."""

from __future__ import annotations

import math

import pytest

from workers.ml.tabular import TabularColumn, TabularData, TabularPreprocessor


def test_preprocessor_fits_on_training_rows_only() -> None:
    data = TabularData(
        columns=[
            TabularColumn("n", "numeric", [1.0, 3.0, None, 100.0]),
            TabularColumn("c", "categorical", ["a", "b", None, "zzz"]),
        ],
        target=[1.0, 2.0, 3.0, 4.0],
        splits=["train", "train", "train", "test"],
    )
    prep = TabularPreprocessor.fit(data, [0, 1, 2])
    numeric, categorical = prep.columns
    assert (numeric.mean, numeric.std, numeric.missing_indicator) == (2.0, 1.0, True)
    assert categorical.categories == ("", "a", "b")  # "zzz" is only in the test row
    assert prep.feature_names == ["n", "n (missing)", "c=(missing)", "c=a", "c=b", "c=(other)"]
    assert (prep.target_mean, prep.target_std) == (2.0, pytest.approx(math.sqrt(2 / 3)))
    encoded = prep.transform(data, [0, 2, 3])
    assert encoded.tolist() == [
        [-1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        [0.0, 1.0, 1.0, 0.0, 0.0, 0.0],  # missing number: the mean, flagged
        [98.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # unseen category: "other"
    ]
    assert prep.transform_row({"n": "3", "c": "b", "extra": 1}).tolist() == [
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
    ]
    assert prep.transform_row({}).tolist() == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert TabularPreprocessor.from_dict(prep.to_dict()) == prep


def test_rare_categories_beyond_the_cap_share_other() -> None:
    values = ["a"] * 5 + ["b"] * 3 + ["c"]
    data = TabularData(
        columns=[TabularColumn("c", "categorical", values)],
        target=[0.0] * 9,
        splits=["train"] * 9,
    )
    prep = TabularPreprocessor.fit(data, list(range(9)), max_categories=2)
    assert prep.columns[0].categories == ("a", "b")
    assert prep.transform_row({"c": "c"}).tolist() == [0.0, 0.0, 1.0]
