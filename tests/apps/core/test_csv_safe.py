import csv
import io

import pytest

from apps.core.csv_safe import neutralize, rows_to_csv


@pytest.mark.parametrize(
    "cell",
    ["=1+1", "+SUM(A1)", "-2+3*cmd|' /C calc'!A0", "@SUM(1)", "\t=1", "\r=1", '=HYPERLINK("x")'],
)
def test_it_neutralises_cells_that_a_spreadsheet_would_run(cell):
    assert neutralize(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-3.5", "+7", "1e5", "plain", "", "猫", 42, None, 1.5])
def test_it_leaves_data_alone(cell):
    assert neutralize(cell) == cell


def test_it_writes_rows_that_read_back_neutralised():
    text = rows_to_csv([["file", "label"], ["=cmd.png", "@cat"], ["a,b.png", "dog"]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["file", "label"], ["'=cmd.png", "'@cat"], ["a,b.png", "dog"]]
