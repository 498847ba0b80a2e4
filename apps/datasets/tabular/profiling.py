"""What a table's columns hold, and what they are: each column's profile gathered while the CSV
streams (counts, examples, stats), then its type, role and problems, and the target.

Cells are read per the one vocabulary of workers.ml.cells (missing, numbers, yes/no), so what
profiling calls missing or a number is what training and row prediction read the same way.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.core import csv_safe
from workers.ml import cells

if TYPE_CHECKING:
    from apps.datasets.tabular.reading import Table

TYPES = ("numeric", "categorical", "text-id", "boolean")
ROLES = ("feature", "target", "id", "ignore")
TASK = "regression"

#: first characters that may make a cell a formula (apps.core.csv_safe decides)
_FORMULA_FIRST = frozenset("=+-@\t\r")
#: a column is numeric when at least this share of its filled cells are numbers; the other
#: cells are then mistakes to fix (or the customer declares the column categorical)
MOSTLY_NUMERIC = 0.8
#: a column of (nearly) unique values whose name is made of these words names the market
#: (country, iso_alpha, market_code, region_id); market_size or country_gdp are features
ID_WORDS = frozenset(
    {
        "id", "uuid", "key", "code", "iso", "name", "country", "countries", "nation", "region",
        "market", "city", "state", "province", "territory", "location", "alpha", "num",
        "number", "no", "nr", "2", "3",
    }
)  # fmt: skip
#: column names that say "predict me", in order of preference
TARGET_WORDS = (
    "target", "label", "y", "score", "price", "demand", "sales", "revenue", "value",
    "turnover", "outcome", "output", "response",
)  # fmt: skip

EXAMPLES = 5
TOP_VALUES = 10

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@dataclass
class ColumnProfile:
    """What one column's cells are, gathered while streaming: counts, examples, stats."""

    name: str
    index: int
    unique_cap: int
    count: int = 0  # filled (not missing) cells
    missing: int = 0
    missing_rows: list[int] = field(default_factory=list)
    numbers: int = 0
    nonfinite: list[list[Any]] = field(default_factory=list)  # [row, cell]
    nonfinite_count: int = 0
    not_numbers: list[list[Any]] = field(default_factory=list)
    booleans: int = 0
    not_booleans: list[list[Any]] = field(default_factory=list)
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    values: dict[str, int] = field(default_factory=dict)
    capped: bool = False

    def add(self, row: int, raw: str, decimal_comma: bool) -> str:
        """Count one cell; returns it as the canonical table keeps it.

        Called for every cell of every upload, so it stays flat: one regex, set lookups.
        """
        cell = raw.strip()
        lowered = cell.lower()
        if lowered in cells.MISSING_TOKENS:
            self.missing += 1
            if len(self.missing_rows) < EXAMPLES:
                self.missing_rows.append(row)
            return ""
        self.count += 1
        if decimal_comma:
            cell = cells.decimal_point(cell) or cell
        value = cells.number_or_none(cell)
        if value is None:
            if len(self.not_numbers) < EXAMPLES:
                self.not_numbers.append([row, cell])
        elif math.isfinite(value):
            self.numbers += 1
            self.total += value
            if value < self.low:
                self.low = value
            if value > self.high:
                self.high = value
        else:  # inf, 1e999
            self._nonfinite(row, cell)
        if lowered in cells.BOOLEAN_TOKENS:
            self.booleans += 1
        elif len(self.not_booleans) < EXAMPLES:
            self.not_booleans.append([row, cell])
        if cell[:1] in _FORMULA_FIRST:
            # counted as written to the canonical table: =cmd|... becomes '=cmd|...
            cell = csv_safe.neutralize(cell)
        values = self.values
        if cell in values:
            values[cell] += 1
        elif len(values) < self.unique_cap:
            values[cell] = 1
        else:
            self.capped = True
        return cell

    def _nonfinite(self, row: int, cell: str) -> None:
        self.nonfinite_count += 1
        if len(self.nonfinite) < EXAMPLES:
            self.nonfinite.append([row, cell])

    def profile(self) -> dict[str, Any]:
        top = sorted(self.values.items(), key=lambda kv: -kv[1])[:TOP_VALUES]
        return {
            "count": self.count,
            "missing": self.missing,
            "missing_rows": self.missing_rows,
            "numbers": self.numbers,
            "nonfinite": self.nonfinite_count,
            "nonfinite_examples": self.nonfinite,
            "not_numbers": self.count - self.numbers - self.nonfinite_count,
            "not_number_examples": self.not_numbers,
            "booleans": self.booleans,
            "not_boolean_examples": self.not_booleans,
            "min": self.low if self.numbers else None,
            "max": self.high if self.numbers else None,
            "mean": self.total / self.numbers if self.numbers else None,
            "unique": len(self.values),
            "unique_capped": self.capped,
            "top": [[value, count] for value, count in top],
            "first": list(itertools.islice(self.values, 3)),
        }


def _words(name: str) -> set[str]:
    return {w.lower() for w in _WORDS.findall(name)}


def _rows_text(examples: list[list[Any]], total: int) -> str:
    """Row 3 ('abc'), 17 ('n.a.'), … : the first examples, and an ellipsis when there are more."""
    shown = ", ".join(f"{row} ('{cell}')" for row, cell in examples)
    return shown + (", …" if total > len(examples) else "")


def _nearly_unique(unique: int, count: int) -> bool:
    """One value per market, give or take a data-entry slip: a name or a code, not a category."""
    return count >= 2 and (unique == count or (count >= 20 and unique >= 0.9 * count))


def detect_type(p: dict[str, Any]) -> str:
    count = p["count"]
    if count == 0:
        return "categorical"
    if p["booleans"] == count and p["unique"] <= 2:
        return "boolean"
    if p["numbers"] + p["nonfinite"] >= MOSTLY_NUMERIC * count and p["numbers"]:
        return "numeric"
    if p["unique_capped"] or _nearly_unique(p["unique"], count):
        return "text-id"
    return "categorical"


def type_problems(name: str, kind: str, p: dict[str, Any]) -> list[dict[str, Any]]:
    """Why the cells of column `name` do not fit type `kind`: errors a customer must fix."""
    if kind == "numeric":
        return _numeric_problems(name, p)
    if kind == "boolean" and p["booleans"] != p["count"]:
        rows = p["not_boolean_examples"]
        return [
            {
                "code": "non_boolean",
                "severity": "blocking",
                "message": _(
                    "Column '%(column)s' cannot be yes/no: rows %(rows)s hold other values. "
                    "Declare it categorical instead."
                )
                % {"column": name, "rows": _rows_text(rows, p["count"] - p["booleans"])},
                "rows": [r for r, _c in rows],
            }
        ]
    return []


def _numeric_problems(name: str, p: dict[str, Any]) -> list[dict[str, Any]]:
    problems = []
    if p["not_numbers"]:
        rows = p["not_number_examples"]
        problems.append(
            {
                "code": "non_numeric",
                "severity": "blocking",
                "message": ngettext(
                    "Numeric column '%(column)s' has %(n)d cell that is not a number, in "
                    "row %(rows)s. Correct it (leave a cell empty when the value is "
                    "unknown) or declare the column categorical.",
                    "Numeric column '%(column)s' has %(n)d cells that are not numbers, in "
                    "rows %(rows)s. Correct them (leave a cell empty when the value is "
                    "unknown) or declare the column categorical.",
                    p["not_numbers"],
                )
                % {
                    "column": name,
                    "n": p["not_numbers"],
                    "rows": _rows_text(rows, p["not_numbers"]),
                },
                "rows": [r for r, _c in rows],
            }
        )
    if p["nonfinite"]:
        rows = p["nonfinite_examples"]
        problems.append(
            {
                "code": "nonfinite",
                "severity": "blocking",
                "message": ngettext(
                    "Column '%(column)s' has %(n)d value that is not a finite number "
                    "(infinity, or too large), in row %(rows)s. Write the number, or leave the "
                    "cell empty when the value is unknown.",
                    "Column '%(column)s' has %(n)d values that are not finite numbers "
                    "(infinity, or too large), in rows %(rows)s. Write the numbers, or leave the "
                    "cells empty when the values are unknown.",
                    p["nonfinite"],
                )
                % {
                    "column": name,
                    "n": p["nonfinite"],
                    "rows": _rows_text(rows, p["nonfinite"]),
                },
                "rows": [r for r, _c in rows],
            }
        )
    return problems


def column_entry(name: str, index: int, kind: str, role: str, p: dict[str, Any]) -> dict:
    """A schema column: what it is (type, role), what it holds (stats) and what is wrong."""
    if kind == "numeric":
        stats = {"min": p["min"], "max": p["max"], "mean": p["mean"]}
    elif kind == "text-id":
        stats = {"examples": p["first"]}
    else:
        stats = {"top": [{"value": v, "count": n} for v, n in p["top"]]}
    if p["unique_capped"]:
        stats["unique_capped"] = True
    problems = type_problems(name, kind, p)
    problems.extend(_fill_problems(name, p))
    if kind == "categorical" and p["numbers"] and p["not_numbers"]:
        problems.append(_mixed_problem(name, p))
    return {
        "name": name,
        "index": index,
        "type": kind,
        "role": role,
        "missing": p["missing"],
        "unique": p["unique"],
        "stats": stats,
        "problems": problems,
        "profile": p,
    }


def _fill_problems(name: str, p: dict[str, Any]) -> list[dict[str, Any]]:
    """Warnings about how a column is filled: empty, constant, or with missing cells."""
    problems = []
    if p["count"] == 0:
        problems.append(
            {
                "code": "empty",
                "severity": "warning",
                "message": _("Column '%(column)s' is empty in every row; it is ignored.")
                % {"column": name},
                "rows": [],
            }
        )
    elif p["unique"] == 1 and not p["missing"]:
        problems.append(
            {
                "code": "constant",
                "severity": "warning",
                "message": _(
                    "Column '%(column)s' holds the same value ('%(value)s') in every row: it "
                    "cannot help a model."
                )
                % {"column": name, "value": p["first"][0]},
                "rows": [],
            }
        )
    elif p["missing"]:
        problems.append(
            {
                "code": "missing",
                "severity": "warning",
                "message": ngettext(
                    "Column '%(column)s' is empty in %(n)d row (row %(rows)s).",
                    "Column '%(column)s' is empty in %(n)d rows (rows %(rows)s).",
                    p["missing"],
                )
                % {
                    "column": name,
                    "n": p["missing"],
                    "rows": ", ".join(map(str, p["missing_rows"]))
                    + (", …" if p["missing"] > len(p["missing_rows"]) else ""),
                },
                "rows": p["missing_rows"],
            }
        )
    return problems


def _mixed_problem(name: str, p: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": "mixed",
        "severity": "warning",
        "message": _(
            "Column '%(column)s' mixes %(numbers)d numbers with %(text)d other cells "
            "(rows %(rows)s), so it is read as categorical. If it holds amounts, "
            "correct those cells."
        )
        % {
            "column": name,
            "numbers": p["numbers"],
            "text": p["not_numbers"],
            "rows": _rows_text(p["not_number_examples"], p["not_numbers"]),
        },
        "rows": [r for r, _c in p["not_number_examples"]],
    }


def _guess_role(name: str, kind: str, p: dict[str, Any], rows: int) -> str:
    if p["count"] == 0 or (p["unique"] <= 1 and not p["missing"]):
        return "ignore"
    if kind == "text-id":
        return "id"
    words = _words(name)
    if words and words <= ID_WORDS and _nearly_unique(p["unique"], rows):
        return "id"
    return "feature"


def _guess_target(columns: list[dict]) -> str | None:
    numeric = [c for c in columns if c["type"] == "numeric" and c["role"] == "feature"]
    for word in TARGET_WORDS:
        for column in numeric:
            if column["name"].lower() == word:
                return column["name"]
    for word in TARGET_WORDS:
        for column in numeric:
            if word in _words(column["name"]):
                return column["name"]
    return numeric[-1]["name"] if numeric else None


def detect_schema(table: Table) -> dict[str, Any]:
    columns = []
    for c in table.columns:
        p = c.profile()
        kind = detect_type(p)
        columns.append(
            column_entry(c.name, c.index, kind, _guess_role(c.name, kind, p, table.rows), p)
        )
    target = _guess_target(columns)
    for column in columns:
        if column["name"] == target:
            column["role"] = "target"
    return {
        "format": 1,
        "columns": columns,
        "target": target,
        "task": TASK,
        "source": {
            "delimiter": table.delimiter,
            "bom": table.bom,
            "decimal_comma": table.decimal_comma,
            "blank_rows": table.blank_rows,
        },
    }
