"""One vocabulary of table cells: the same cells mean the same thing at upload, in training and in
row prediction (workers.ml.cells holds the rules).

Each path is driven through the code it runs in production: upload profiling reads the CSV
bytes (apps.datasets.tabular), training reads the rows as the training service hands them to
the ML core (apps.training.execution.tabular_records, then workers.ml.tabular), and a deployed
model reads JSON rows as the prediction endpoint does (apps.deployments.rows, then the stored
model's TabularPredictor).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from apps.core.errors import InvalidInput
from apps.datasets.tabular.profiling import detect_schema
from apps.datasets.tabular.reading import scan_csv
from apps.deployments.rows import read_rows, row_schema
from apps.training.execution import tabular_features, tabular_records
from workers.ml.tabular import (
    RegressionConfig,
    TabularData,
    TabularPredictor,
    TabularPreprocessor,
    train_regressor,
)
from workers.ml.tabular.data import category_cell, number_cell

#: what spreadsheets, pandas, R and Python write for "unknown"
MISSING = ["", "  ", "NA", "n/a", "#N/A", "null", "NULL", "None", "none", "nan", "NaN", "-nan", "-"]
NUMBERS = ["12", "-3.5", ".5", "1e1", " 7 ", "+4", "3.25", "9", "10", "11"]
REGIONS = ["north", "south", "east", "north", "south", "east", "north", "south", "east", "west"]
YES_NO = ["yes", "no", "no", "yes", "yes", "no", "yes", "no", "no", "yes"]
#: cells no model can use as a number
NONFINITE = ["inf", "-Infinity", "+INF", "1e999"]
FEATURES = ("amount", "region", "flag")


def table(amounts: list[str]) -> list[dict[str, str]]:
    """A table whose filled rows come first and whose last rows hold one missing token each."""
    filled = len(NUMBERS)
    return [
        {
            "amount": amount,
            "region": REGIONS[i] if i < filled else MISSING[i - filled],
            "flag": YES_NO[i] if i < filled else MISSING[i - filled],
            "y": str(i + 1),
        }
        for i, amount in enumerate(amounts)
    ]


ROWS = table(NUMBERS + MISSING)
MISSING_ROWS = list(range(len(NUMBERS), len(ROWS)))


def csv_bytes(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*FEATURES, "y"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def upload_schema(rows: list[dict[str, str]]) -> dict[str, Any]:
    """What upload profiling detects in the CSV, as ingestion stores it in the version."""
    schema = detect_schema(scan_csv(io.BytesIO(csv_bytes(rows)), source_name="cells.csv"))
    for column in schema["columns"]:
        column["role"] = "target" if column["name"] == "y" else "feature"
    return {**schema, "target": "y"}


def training_data(schema: dict[str, Any], rows: list[dict[str, str]]) -> TabularData:
    """The table as the training service hands it to the ML core, from the same raw cells."""
    records = list(tabular_records(schema, iter([dict(row) for row in rows])))
    splits = ["train", "validation", "test"] * len(records)
    return TabularData.from_records(
        [r | {"__split": s} for r, s in zip(records, splits, strict=False)],
        features=tabular_features(schema),
        target="y",
    )


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return upload_schema(ROWS)


def test_upload_profiling_counts_every_token_as_missing(schema):
    columns = {c["name"]: c for c in schema["columns"]}
    assert {name: columns[name]["type"] for name in FEATURES} == {
        "amount": "numeric",
        "region": "categorical",
        "flag": "boolean",
    }
    assert {name: columns[name]["missing"] for name in FEATURES} == dict.fromkeys(
        FEATURES, len(MISSING)
    )
    assert {t["value"] for t in columns["region"]["stats"]["top"]} == set(REGIONS)
    assert not [p for p in columns["amount"]["problems"] if p["severity"] == "blocking"]


def test_training_reads_the_same_cells_as_missing(schema):
    data = training_data(schema, ROWS)
    every_row = list(range(data.rows))
    preprocessor = TabularPreprocessor.fit(data, every_row)
    encoded = preprocessor.transform(data, every_row)
    amount, region, flag = preprocessor.columns
    assert amount.missing_indicator and flag.missing_indicator
    assert list(np.flatnonzero(encoded[:, 1])) == MISSING_ROWS  # amount's missing input
    assert region.categories == ("", *sorted(set(REGIONS)))  # "" is the missing category
    assert list(np.flatnonzero(encoded[:, amount.width])) == MISSING_ROWS
    flag_missing = amount.width + region.width + 1
    assert list(np.flatnonzero(encoded[:, flag_missing])) == MISSING_ROWS
    # The numbers training read are the ones upload profiling summed.
    profiled = next(c for c in schema["columns"] if c["name"] == "amount")
    assert amount.mean == pytest.approx(profiled["stats"]["mean"])


@pytest.fixture(scope="module")
def deployed(schema, tmp_path_factory: pytest.TempPathFactory) -> TabularPredictor:
    """A model trained on the table, loaded from its stored bundle as an endpoint loads it."""
    result = train_regressor(
        config=RegressionConfig(epochs=2, seed=1),
        data=training_data(schema, ROWS),
        output_dir=tmp_path_factory.mktemp("cells"),
        device="cpu",
    )
    return TabularPredictor.load(Path(result.bundle_path), device="cpu")


def predicted(predictor: TabularPredictor, schema: dict[str, Any], row: dict[str, Any]):
    """What the prediction endpoint reads from a JSON row, and the value it answers."""
    rows_schema = row_schema(features=predictor.columns, target="y", table=schema)
    read = read_rows({"row": row}, schema=rows_schema, max_rows=10)
    return read[0], predictor.predict_rows(read)[0]


@pytest.mark.parametrize("token", MISSING)
def test_row_prediction_reads_the_same_cells_as_missing(deployed, schema, token):
    read, value = predicted(deployed, schema, dict.fromkeys(FEATURES, token))
    assert read == dict.fromkeys(FEATURES)
    assert value == predicted(deployed, schema, {})[1]


def test_row_prediction_reads_numbers_and_yes_no_as_training_did(deployed, schema):
    data = training_data(schema, ROWS)
    amount, region, flag = data.columns
    for i in range(len(NUMBERS)):
        read, value = predicted(deployed, schema, {name: ROWS[i][name] for name in FEATURES})
        assert read == {
            "amount": number_cell(amount.values[i], where="amount"),
            "region": category_cell(region.values[i]),
            "flag": number_cell(flag.values[i], where="flag"),
        }
        assert value == deployed.predict({column.name: column.values[i] for column in data.columns})


@pytest.mark.parametrize("token", NONFINITE)
def test_a_nonfinite_number_is_refused_on_every_path(schema, token):
    amounts = [token, *NUMBERS[1:], *MISSING]
    profiled = {c["name"]: c for c in upload_schema(table(amounts))["columns"]}["amount"]
    assert profiled["type"] == "numeric"
    assert [p["code"] for p in profiled["problems"] if p["severity"] == "blocking"] == ["nonfinite"]
    data = training_data(schema, table(amounts))
    with pytest.raises(ValueError, match="column 'amount', data row 1: .* not a finite number"):
        TabularPreprocessor.fit(data, list(range(data.rows)))
    rows_schema = row_schema(
        features=[{"name": "amount", "kind": "numeric"}], target="y", table=schema
    )
    with pytest.raises(InvalidInput, match="not a finite number"):
        read_rows({"row": {"amount": token}}, schema=rows_schema, max_rows=10)
