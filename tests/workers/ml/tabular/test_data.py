"""The table a regression model learns from: its shape is checked and bad cells are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.ml.tabular.tables import train_cpu
from workers.ml.tabular import RegressionConfig, TabularColumn, TabularData


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": []}, "at least one feature column"),
        ({"splits": ["train", "holdout"]}, "data row 2 has split 'holdout'"),
        ({"target": [1.0]}, "column 'n' has 2 values for 1 rows"),
        (
            {"columns": [TabularColumn("n", "numeric", [1, 2])] * 2},
            "column 'n' appears twice",
        ),
        ({"columns": [TabularColumn("n", "text", [1, 2])]}, "kind 'text'"),
    ],
)
def test_malformed_tables_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "columns": [TabularColumn("n", "numeric", [1, 2])],
        "target": [1.0, 2.0],
        "splits": ["train", "test"],
    }
    with pytest.raises(ValueError, match=message):
        TabularData(**(base | kwargs))  # type: ignore[arg-type]


def test_bad_cells_are_named_by_column_and_row(tmp_path: Path) -> None:
    data = TabularData(
        columns=[TabularColumn("area", "numeric", ["1", "2", "lots"])],
        target=[1, 2, 3],
        splits=["train", "train", "train"],
    )
    with pytest.raises(ValueError, match="column 'area', data row 3: 'lots' is not a number"):
        train_cpu(data, tmp_path, RegressionConfig(epochs=1))
    no_target = TabularData(
        columns=[TabularColumn("area", "numeric", [1, 2])],
        target=[None, "NA"],
        splits=["train", "test"],
    )
    with pytest.raises(ValueError, match="no training row has a value for the target"):
        train_cpu(no_target, tmp_path, RegressionConfig(epochs=1))
