"""CSV the portal exports, safe to open in a spreadsheet.

A cell that starts with = + - @ (or a tab / carriage return before one) would run as a formula
in Excel or LibreOffice (CSV injection); such cells are prefixed with a single quote. Numbers
stay numbers: -3.5 is data, not a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> Any:
    """The value as it is safe to write to a CSV cell."""
    if not isinstance(value, str) or not value.startswith(_TRIGGERS):
        return value
    if value[0] in "+-":
        try:
            float(value)
        except ValueError:
            pass
        else:
            return value  # a signed number
    return "'" + value


def write_rows(handle: Any, rows: Iterable[Sequence[Any]]) -> None:
    """Write rows to a text handle as UTF-8 CSV with every cell neutralised."""
    writer = csv.writer(handle, lineterminator="\n")
    for row in rows:
        writer.writerow([neutralize(cell) for cell in row])


def rows_to_csv(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    write_rows(buffer, rows)
    return buffer.getvalue()
