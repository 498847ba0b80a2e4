"""The vocabulary of table cells on its own: missing, numbers, yes/no and split ratios."""

from __future__ import annotations

import math

import pytest

from workers.ml import cells


@pytest.mark.parametrize(
    "cell", [None, math.nan, "", "  ", "NA", "n/a", "#N/A", "null", "None", "nan", "-NaN", "-"]
)
def test_it_reads_what_tools_write_for_unknown_as_missing(cell: object) -> None:
    assert cells.is_missing(cell)
    assert cells.category(cell) is None


@pytest.mark.parametrize("cell", ["0", "no", "N/A/B", "none of them", 0, 0.0, "--"])
def test_it_keeps_values_that_only_look_empty(cell: object) -> None:
    assert not cells.is_missing(cell)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("12", 12.0),
        ("١٢", 12.0),
        (" -3.5 ", -3.5),
        (".5", 0.5),
        ("+4", 4.0),
        ("1e3", 1000.0),
        ("7.", 7.0),
    ],
)
def test_it_reads_numbers_written_with_a_dot(text: str, number: float) -> None:
    assert cells.read_number(text) == number


@pytest.mark.parametrize("text", ["abc", "1,5", "1_000", "12 million", "0x10", "1.2.3"])
def test_it_refuses_text_that_writes_no_number(text: str) -> None:
    assert cells.number_or_none(text.strip()) is None
    with pytest.raises(cells.NotANumber, match="is not a number"):
        cells.read_number(text)


@pytest.mark.parametrize("text", ["inf", "-Infinity", "+INF", "1e999", "-1e400"])
def test_it_tells_infinity_apart_from_text(text: str) -> None:
    assert math.isinf(cells.number_or_none(text) or 0.0)
    with pytest.raises(cells.NonFiniteNumber, match="not a finite number"):
        cells.read_number(text)


def test_missing_wins_over_a_number() -> None:
    assert cells.read_number(" NaN ") is None
    assert cells.read_number("-") is None


def test_it_rewrites_a_decimal_comma_only_when_asked() -> None:
    assert cells.decimal_point("1,5") == "1.5"
    assert cells.decimal_point("-,5") == "-.5"
    assert cells.decimal_point("1,000,000") is None
    assert cells.decimal_point("1.5") is None


@pytest.mark.parametrize(
    ("cell", "value"),
    [("yes", True), (" Y ", True), ("TRUE", True), ("1", True), ("no", False), ("f", False)],
)
def test_it_reads_yes_and_no(cell: str, value: bool) -> None:
    assert cells.boolean_value(cell) is value


@pytest.mark.parametrize("cell", ["", "NA", "maybe", "2"])
def test_anything_else_is_no_yes_or_no(cell: str) -> None:
    assert cells.boolean_value(cell) is None


def test_split_ratios_default_and_check() -> None:
    assert cells.check_split_ratios(None) == cells.DEFAULT_SPLIT_RATIOS
    assert cells.check_split_ratios({}) is not cells.DEFAULT_SPLIT_RATIOS
    assert cells.check_split_ratios({"train": 0.8, "test": 0.2}) == {
        "train": 0.8,
        "validation": 0.0,
        "test": 0.2,
    }
    assert cells.check_split_ratios({"validation": 0.5, "test": 0.5})["train"] == 0.0


@pytest.mark.parametrize(
    "raw",
    [
        {"train": 0.5},
        {"train": 1.2, "test": -0.2},
        {"train": "x"},
        {"train": math.inf},
        {"train": 0.7, "validation": 0.15, "holdout": 0.15},
        ["train"],
    ],
)
def test_split_ratios_that_make_no_sense_are_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="split ratios"):
        cells.check_split_ratios(raw)  # type: ignore[arg-type]


def test_a_split_for_training_can_be_required() -> None:
    with pytest.raises(ValueError):
        cells.check_split_ratios({"validation": 0.5, "test": 0.5}, train_required=True)
