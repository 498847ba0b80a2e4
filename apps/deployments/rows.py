"""JSON rows for a tabular-regression endpoint, read the way training read its table.

Training reads the canonical CSV of a dataset version (apps.datasets.tabular): cells trimmed,
missing, number and yes/no cells as workers.ml.cells defines them, yes/no columns as 1.0 / 0.0
(apps.training.services.tabular_records), categories as text with formula-like text
neutralised. A cell of a JSON row must mean what the same cell meant in that table, so every
cell is checked against its column's kind here and turned into what the predictor reads.
Anything the table could not have held is refused, naming the row and the column, because a
silently missing value would still give an answer, just a wrong one.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from apps.core import csv_safe
from apps.core.errors import InvalidInput
from workers.ml import cells

NUMERIC = "numeric"
CATEGORICAL = "categorical"
BOOLEAN = "boolean"

#: columns named in full in a message; a wider table is cut short with "…"
_NAMED_COLUMNS = 30
#: columns in the ready-to-copy example row of the endpoint page
EXAMPLE_COLUMNS = 20


@dataclass(frozen=True)
class Column:
    """One input column of a regression model: its name, its kind as the customer confirmed it
    ("numeric", "categorical" or "boolean"), a typical value for examples and, for a category,
    the most frequent values in the training table (most frequent first)."""

    name: str
    kind: str
    example: Any = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowSchema:
    """What a regression endpoint reads: its feature columns, the column it predicts, and the
    table's other columns (ids, ignored ones, the target), which a row may hold and which are
    ignored, so a row of the uploaded table can be sent as it is."""

    columns: tuple[Column, ...]
    target: str
    ignored: frozenset[str]

    @property
    def example_row(self) -> dict[str, Any]:
        return {c.name: c.example for c in self.columns[:EXAMPLE_COLUMNS]}


def row_schema(
    *, features: Sequence[Mapping[str, str]], target: str, table: Mapping[str, Any]
) -> RowSchema:
    """The row schema of a model with input columns ``features`` (``TabularPredictor.columns``:
    the model's own record, which wins) trained on a table whose dataset-version schema is
    ``table`` (which says which numeric inputs were yes/no columns, and typical values)."""
    by_name = {c["name"]: c for c in table.get("columns", [])}
    columns = []
    for feature in features:
        entry = by_name.get(feature["name"], {})
        kind = feature["kind"]
        if kind == NUMERIC and entry.get("type") == BOOLEAN:
            kind = BOOLEAN
        stats = entry.get("stats") or {}
        choices = tuple(_top_values(stats)) if kind == CATEGORICAL else ()
        columns.append(Column(feature["name"], kind, _example(kind, stats), choices))
    names = {c.name for c in columns}
    return RowSchema(columns=tuple(columns), target=target, ignored=frozenset(set(by_name) - names))


def _example(kind: str, stats: Mapping[str, Any]) -> Any:
    if kind == NUMERIC:
        mean = stats.get("mean")
        if not isinstance(mean, int | float) or not math.isfinite(mean):
            return 0
        rounded = float(f"{mean:.4g}")
        return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded
    top = _top_values(stats)
    if kind == BOOLEAN:
        return bool(cells.boolean_value(top[0])) if top else True
    return top[0] if top else ""


def _top_values(stats: Mapping[str, Any]) -> list[str]:
    return [str(t["value"]) for t in stats.get("top") or [] if t.get("value")]


def read_rows(data: Any, *, schema: RowSchema, max_rows: int) -> list[dict[str, Any]]:
    """The rows of a request body ({"rows": [...]} or {"row": {...}}), converted to what the
    predictor reads: numbers as floats, yes/no as 1.0 / 0.0, categories as text, None where a
    value is missing.

    Raises:
        InvalidInput: naming the row and the column, and saying how to fix it.
    """
    shape = (
        'Send a JSON object: {"rows": [{"column": value, ...}, ...]} for up to '
        f'{max_rows} rows, or {{"row": {{"column": value, ...}}}} for one.'
    )
    if isinstance(data, list):
        raise InvalidInput(
            f'The body is a JSON list; wrap the rows in an object: {{"rows": [...]}}. {shape}',
            field="rows",
        )
    if not isinstance(data, Mapping):
        raise InvalidInput(f"The body is {_kind(data)}, not an object. {shape}", field="rows")
    unknown = [key for key in data if key not in ("rows", "row")]
    if unknown:
        raise InvalidInput(
            f"Unknown key {_shown(unknown[0])} in the body. {shape}", field=str(unknown[0])
        )
    if "rows" in data and "row" in data:
        raise InvalidInput("Send either 'rows' or 'row', not both.", field="rows")
    if "row" in data:
        row = data["row"]
        if isinstance(row, list):
            raise InvalidInput(
                "'row' holds a list; send several rows as \"rows\": [...], or one row as "
                '"row": {"column": value, ...}.',
                field="row",
            )
        return [_read_row(row, where="row", schema=schema)]
    if "rows" not in data:
        raise InvalidInput(f"The body has neither 'rows' nor 'row'. {shape}", field="rows")
    rows = data["rows"]
    if isinstance(rows, Mapping):
        raise InvalidInput(
            '\'rows\' holds one object; send a list of them ("rows": [{...}]), or use "row" '
            "for a single row.",
            field="rows",
        )
    if not isinstance(rows, list):
        raise InvalidInput(
            f"'rows' is {_kind(rows)}; it must be a list of row objects, e.g. "
            '{"rows": [{"column": value}]}.',
            field="rows",
        )
    if not rows:
        raise InvalidInput("'rows' is empty; send at least one row.", field="rows")
    if len(rows) > max_rows:
        raise InvalidInput(
            f"Send at most {max_rows} rows per call; got {len(rows)}. Split them into calls of "
            f"{max_rows} rows or fewer.",
            code="too_many_rows",
            field="rows",
        )
    return [_read_row(row, where=f"rows[{i}]", schema=schema) for i, row in enumerate(rows)]


def _read_row(row: Any, *, where: str, schema: RowSchema) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise InvalidInput(
            f"{where} is {_kind(row)}, not an object. Send each row as an object of column "
            f"names and values, e.g. {json.dumps(schema.example_row)[:200]}.",
            field=where,
        )
    columns = {c.name: c for c in schema.columns}
    read: dict[str, Any] = {}
    for name, value in row.items():
        column = columns.get(name)
        if column is None:
            if name in schema.ignored:
                continue
            raise InvalidInput(_unknown_column(where, name, schema), field=f"{where}.{name}")
        read[name] = _read_cell(value, column, at=_At(where, name))
    # A column left out is a missing value, which the model's preprocessor fills in.
    return read


def _unknown_column(where: str, name: str, schema: RowSchema) -> str:
    names = [c.name for c in schema.columns]
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f" (did you mean {_shown(close[0])}?)" if close else ""
    listed = ", ".join(f"{c.name} ({c.kind})" for c in schema.columns[:_NAMED_COLUMNS])
    if len(names) > _NAMED_COLUMNS:
        listed += ", …"
    return (
        f"{where} has an unknown column {_shown(name)}{hint}. The model reads these columns: "
        f"{listed}. Correct the name or leave the column out."
    )


@dataclass(frozen=True)
class _At:
    """Where a cell is: "rows[3]" (or "row") and the column's name."""

    row: str
    column: str

    def refuse(self, problem: str) -> InvalidInput:
        return InvalidInput(
            f"{self.row}, column {_shown(self.column)}: {problem}",
            field=f"{self.row}.{self.column}",
        )


def _read_cell(value: Any, column: Column, *, at: _At) -> Any:
    if value is None:
        return None
    if column.kind == NUMERIC:
        return _read_number(value, at=at)
    if column.kind == BOOLEAN:
        return _read_boolean(value, at=at)
    return _read_category(value, at=at)


def _read_number(value: Any, *, at: _At) -> float | None:
    fix = 'Send a number (1234.5, or the text "1234.5"), or null when the value is unknown.'
    if isinstance(value, bool | list | dict):
        raise at.refuse(f"{_shown(value)} is not a number. {fix}")
    if isinstance(value, str):
        dotted = cells.decimal_point(value.strip())
        if dotted is not None:
            raise at.refuse(
                f"{_shown(value)} has a decimal comma; write the number with a dot ({dotted})."
            )
        try:
            return cells.read_number(value)
        except cells.NonFiniteNumber:
            raise _nonfinite(value, at) from None
        except cells.NotANumber:
            raise at.refuse(f"{_shown(value)} is not a number. {fix}") from None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the range of a float
        raise _nonfinite(value, at) from None
    # A JSON NaN literal is no text cell: it is refused like infinity, not read as missing.
    if not math.isfinite(number):
        raise _nonfinite(value, at)
    return number


def _nonfinite(value: Any, at: _At) -> InvalidInput:
    return at.refuse(
        f"{_shown(value)} is not a finite number (NaN and infinity cannot be used). Send the "
        "number, or null when the value is unknown."
    )


def _read_boolean(value: Any, *, at: _At) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    if isinstance(value, str):
        if cells.is_missing(value):
            return None
        yes = cells.boolean_value(value)
        if yes is not None:
            # As training read the column (apps.training.services.tabular_records).
            return float(yes)
    raise at.refuse(
        f"{_shown(value)} is not yes or no, and this is a yes/no column. Send true or false "
        '(or "yes" / "no", 1 / 0), or null when the value is unknown.'
    )


def _read_category(value: Any, *, at: _At) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        text = cells.category(value)
        # As ingestion stored the cell in the canonical table the model was trained on.
        return None if text is None else csv_safe.neutralize(text)
    hint = f' (e.g. "{value}")' if isinstance(value, float) and math.isfinite(value) else ""
    raise at.refuse(
        f"{_shown(value)} is not a category, and this column is categorical. Send the category "
        f"as text, as it appears in the table{hint}, or null when it is unknown."
    )


def _shown(value: Any) -> str:
    """A value as the client wrote it in JSON, shortened for a message."""
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:40] + "…"
        return "'" + text + "'"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
