"""Tabular datasets (market data): read a customer's CSV, detect its columns, keep a canonical copy.

Two entry points, both called by apps.datasets.services:

- `inspect_csv(upload)` runs in the upload request, before anything is stored. It streams the
  whole file once and refuses (InvalidInput, 400) what cannot become a table: another encoding
  than UTF-8, a binary file, an empty file, a missing, empty or duplicated header name, ragged
  rows, no data rows, too many rows, columns or bytes, and cells that are not numbers (or are
  NaN / infinite) in a column of numbers. The customer learns at once, naming row and column.
- `ingest_tabular(version)` runs on the worker in the version's tenant scope. It reads the file
  again with the same code, writes the canonical table, detects types, roles and the target,
  draws the splits and writes the health report.

Input: UTF-8 with or without a byte-order mark; comma, semicolon or tab, sniffed from the first
lines; a header row is required; in semicolon and tab files a decimal comma (``1,5``) is read
as a decimal point. Cells that are empty, ``NA``, ``N/A``, ``#N/A``, ``null`` or ``-`` (any
case) are missing. Rows that are entirely blank are dropped and counted. "Row N" in every
message counts like a spreadsheet: the header is row 1, the first market is row 2.

What an ingested version holds (the training code reads this):

- ``version.data_file``: the canonical table. UTF-8 without BOM, comma-separated, ``\\n`` line
  ends, minimal quoting. Row 1 holds the column names exactly as ``schema["columns"][i]["name"]``
  plus a last column ``__split``; then one row per market in upload order, blank rows dropped.
  Missing cells are empty; decimal commas are rewritten with a point; every other cell is the
  customer's text, trimmed. A cell a spreadsheet would run as a formula (= + - @ first, except
  signed numbers) is prefixed with ``'`` (apps.core.csv_safe), header names included.
- The splits live in that ``__split`` column: ``train``, ``validation`` or ``test`` on every row.
  They are drawn once at ingestion from ``version.split_ratios`` (default 70/15/15) and
  ``version.split_seed``: exact counts (rounded), shuffled with ``random.Random`` seeded by the
  seed alone, so the same table and seed give the same splits on any machine. Not stratified:
  the task is regression. ``schema["split"]`` repeats the ratios, seed and counts.
- ``version.schema``::

      {"format": 1,
       "columns": [{"name": str, "index": int (0-based, in the CSV),
                    "type": "numeric" | "categorical" | "text-id" | "boolean",
                    "role": "feature" | "target" | "id" | "ignore",
                    "missing": int, "unique": int,
                    "stats": numeric {"min", "max", "mean"} | categorical and boolean
                             {"top": [{"value", "count"}]} | text-id {"examples": [str]},
                    "problems": [{"code", "severity": "blocking" | "warning", "message",
                                  "rows": [int]}],
                    "profile": {...}}],   # type-free facts, to re-check a declared type
       "target": str | None, "task": "regression",
       "split": {"column": "__split", "seed": int, "ratios": {...}, "counts": {...}},
       "source": {"delimiter": str, "bom": bool, "decimal_comma": bool, "blank_rows": int}}

  Training uses the columns whose role is "feature" (numeric as floats, boolean via
  `boolean_value`, categorical one-hot; text-id columns are never features) to predict the
  "target" column, a numeric one.
- ``version.health``: ``{"problems": [{"code", "severity", "message"}], "trainable": bool}``;
  any problem of severity "blocking" makes the version untrainable.
- ``version.confirmed_at``: set by `tabular_version_confirm` once the customer has checked (and
  possibly changed) the detected types, roles and target.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import random
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.audit.services import audit_record
from apps.core import csv_safe
from apps.core.errors import Conflict, InvalidInput
from apps.core.jobs import JobStatus, ProgressReporter, job_finish
from apps.core.text import human_size
from apps.datasets.models import DatasetKind, DatasetVersion

SPLIT_COLUMN = "__split"
SPLITS = ("train", "validation", "test")
DEFAULT_RATIOS = {"train": 0.7, "validation": 0.15, "test": 0.15}

TYPES = ("numeric", "categorical", "text-id", "boolean")
ROLES = ("feature", "target", "id", "ignore")
TASK = "regression"

MISSING_TOKENS = frozenset({"", "na", "n/a", "#n/a", "null", "-"})
NONFINITE_TOKENS = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
TRUE_TOKENS = frozenset({"true", "yes", "y", "t", "1"})
FALSE_TOKENS = frozenset({"false", "no", "n", "f", "0"})
_BOOLEAN_TOKENS = TRUE_TOKENS | FALSE_TOKENS
#: first characters that may make a cell a formula (apps.core.csv_safe decides)
_FORMULA_FIRST = frozenset("=+-@\t\r")

#: a column is numeric when at least this share of its filled cells are numbers; the other
#: cells are then mistakes to fix (or the customer declares the column categorical)
MOSTLY_NUMERIC = 0.8
MIN_TRAINABLE_ROWS = 10
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

SAMPLE_LINES = 50
MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_CELL_CHARS = 64 * 1024
EXAMPLES = 5
TOP_VALUES = 10
PREVIEW_PAGE_SIZE = 50

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")

_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook is one too)"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
)
_SAVE_AS_UTF8 = "In Excel: File › Save As › 'CSV UTF-8 (Comma delimited)'."


def max_rows() -> int:
    return settings.LEPTON_MAX_TABLE_ROWS


def max_columns() -> int:
    return settings.LEPTON_MAX_TABLE_COLUMNS


def max_bytes() -> int:
    return settings.LEPTON_MAX_TABLE_BYTES


def boolean_value(cell: str) -> bool | None:
    """A boolean cell as True / False (None when missing): what training feeds a model."""
    token = cell.strip().lower()
    if token in TRUE_TOKENS:
        return True
    if token in FALSE_TOKENS:
        return False
    return None


# --- reading ----------------------------------------------------------------------------------


@dataclass
class _Column:
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
        if lowered in MISSING_TOKENS:
            self.missing += 1
            if len(self.missing_rows) < EXAMPLES:
                self.missing_rows.append(row)
            return ""
        self.count += 1
        if decimal_comma and "," in cell and _DECIMAL_COMMA.fullmatch(cell):
            cell = cell.replace(",", ".")
        if _NUMBER.fullmatch(cell):
            value = float(cell)
            if math.isfinite(value):
                self.numbers += 1
                self.total += value
                if value < self.low:
                    self.low = value
                if value > self.high:
                    self.high = value
            else:  # 1e999
                self._nonfinite(row, cell)
        elif lowered in NONFINITE_TOKENS:
            self._nonfinite(row, cell)
        elif len(self.not_numbers) < EXAMPLES:
            self.not_numbers.append([row, cell])
        if lowered in _BOOLEAN_TOKENS:
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


@dataclass
class _Table:
    source_name: str
    delimiter: str
    bom: bool
    decimal_comma: bool
    columns: list[_Column]
    rows: int = 0
    blank_rows: int = 0


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(message, field="file")


def _check_head(head: bytes, name: str) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _refuse(
            _("'%(name)s' is saved as UTF-16; save it as UTF-8 and upload it again. %(how)s")
            % {"name": name, "how": _SAVE_AS_UTF8}
        )
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise _refuse(
                _(
                    "'%(name)s' is %(what)s, not a CSV text file. Save the table as CSV "
                    "(UTF-8) and upload that file. %(how)s"
                )
                % {"name": name, "what": what, "how": _SAVE_AS_UTF8}
            )
    if b"\x00" in head:
        raise _refuse(
            _(
                "'%(name)s' is not a text file (it holds NUL bytes): it may be a spreadsheet "
                "or an archive renamed .csv. Save the table as CSV (UTF-8). %(how)s"
            )
            % {"name": name, "how": _SAVE_AS_UTF8}
        )


def _lines(handle: IO[bytes], name: str, info: dict[str, Any]) -> Iterator[str]:
    """The file's lines decoded as UTF-8, each checked; never more than one line in memory."""
    _check_head(handle.read(8192), name)
    handle.seek(0)
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise _refuse(
                _(
                    "Line %(line)d of '%(name)s' is longer than %(limit)s. Check that the "
                    "file is a table with one market per line (lines ending in a carriage "
                    "return only are not supported: save as 'CSV UTF-8')."
                )
                % {"line": number, "name": name, "limit": human_size(MAX_LINE_BYTES)}
            )
        if b"\x00" in raw:
            raise _refuse(
                _(
                    "Line %(line)d of '%(name)s' holds a NUL byte: the file is not plain "
                    "text. Save the table as CSV (UTF-8)."
                )
                % {"line": number, "name": name}
            )
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            info["bom"] = True
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = raw[max(0, exc.start - 20) : exc.start + 20].decode("utf-8", "replace")
            raise _refuse(
                _(
                    "Line %(line)d of '%(name)s' is not UTF-8 (byte 0x%(byte)02X near "
                    "'%(text)s'): the file was saved in another encoding, such as Latin-1 or "
                    "Windows-1252. Save it as UTF-8 and upload it again. %(how)s"
                )
                % {
                    "line": number,
                    "name": name,
                    "byte": raw[exc.start],
                    "text": shown.strip(),
                    "how": _SAVE_AS_UTF8,
                }
            ) from None


def _sniff(sample: list[str]) -> str:
    """Comma, semicolon or tab: the one that splits the first lines evenly into most columns."""
    best, best_score = ",", (False, 0)
    for delimiter in (",", ";", "\t"):
        try:
            rows = [r for r in csv.reader(sample, delimiter=delimiter) if any(c.strip() for c in r)]
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        even = all(len(r) == width for r in rows[1:])
        score = (width > 1 and even, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _looks_like_data(name: str) -> bool:
    """A header cell no one would name a column: 43.828, -1, 1e5 (2019 might be a year)."""
    return bool(_NUMBER.fullmatch(name)) and not re.fullmatch(r"\d{1,4}", name)


def _check_header(names: list[str], source_name: str, row: int) -> None:
    data_like = [(i, n) for i, n in enumerate(names, start=1) if _looks_like_data(n)]
    if data_like:
        index, cell = data_like[0]
        raise _refuse(
            _(
                "Row %(row)d of '%(name)s' holds data ('%(cell)s' in column %(index)d), not "
                "column names: the header is missing. Add a first row that names each column, "
                "e.g. market,region,population,price."
            )
            % {"row": row, "name": source_name, "cell": cell, "index": index}
        )
    if len(names) > max_columns():
        raise _refuse(
            _(
                "'%(name)s' has %(n)d columns; at most %(limit)d are allowed. Remove the "
                "columns the model does not need."
            )
            % {"name": source_name, "n": len(names), "limit": max_columns()}
        )
    if len(names) < 2:
        raise _refuse(
            _(
                "'%(name)s' has a single column ('%(column)s'): a table needs at least one "
                "feature and a target. Separate the columns with commas, semicolons or tabs."
            )
            % {"name": source_name, "column": names[0] if names else ""}
        )
    empty = [str(i) for i, n in enumerate(names, start=1) if not n]
    if empty:
        raise _refuse(
            ngettext(
                "Column %(columns)s has no name in the header row. Name every column, or "
                "delete the empty column (a trailing delimiter at the end of the header line "
                "adds one).",
                "Columns %(columns)s have no name in the header row. Name every column, or "
                "delete the empty columns (a trailing delimiter at the end of the header line "
                "adds one).",
                len(empty),
            )
            % {"columns": ", ".join(empty)}
        )
    positions: dict[str, list[int]] = {}
    for i, n in enumerate(names, start=1):
        positions.setdefault(n, []).append(i)
    duplicates = {n: p for n, p in positions.items() if len(p) > 1}
    if duplicates:
        listed = "; ".join(
            _("'%(column)s' in columns %(positions)s")
            % {"column": n, "positions": ", ".join(map(str, p))}
            for n, p in duplicates.items()
        )
        raise _refuse(
            _(
                "The header names a column more than once: %(listed)s. Column names must be "
                "unique: rename the copies."
            )
            % {"listed": listed}
        )
    if SPLIT_COLUMN in positions:
        raise _refuse(
            _("The column name '%(column)s' is reserved by the portal; rename that column.")
            % {"column": SPLIT_COLUMN}
        )


def _scan(
    handle: IO[bytes],
    *,
    source_name: str,
    sink: Callable[[list[str]], Any] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> _Table:
    """Read a CSV once, streaming; refuse what cannot be a table. `sink` gets canonical rows."""
    info: dict[str, Any] = {"bom": False}
    lines = _lines(handle, source_name, info)
    sample = list(itertools.islice(lines, SAMPLE_LINES))
    delimiter = _sniff(sample)
    decimal_comma = delimiter != ","
    reader = csv.reader(itertools.chain(sample, lines), delimiter=delimiter)
    table: _Table | None = None
    width = 0
    limit = max_rows()
    row = 0
    try:
        for cells in reader:
            row += 1
            if not any(c.strip() for c in cells):
                if table is not None:
                    table.blank_rows += 1
                continue
            if table is None:
                names = [csv_safe.neutralize(c.strip()) for c in cells]
                _check_header(names, source_name, row)
                width = len(names)
                cap = min(10_000, max(1_000, 1_000_000 // width))
                columns = [_Column(name=n, index=i, unique_cap=cap) for i, n in enumerate(names)]
                table = _Table(source_name, delimiter, info["bom"], decimal_comma, columns)
                if sink is not None:
                    sink(names)
                continue
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]  # trailing empty cells some spreadsheets add
            if len(cells) != width:
                raise _refuse(
                    _(
                        "Row %(row)d has %(found)d cells but the header names %(expected)d "
                        "columns. Check that row's delimiters ('%(delimiter)s') and quotes: a "
                        "value holding the delimiter must be in double quotes."
                    )
                    % {
                        "row": row,
                        "found": len(cells),
                        "expected": width,
                        "delimiter": "\\t" if delimiter == "\t" else delimiter,
                    }
                )
            table.rows += 1
            if table.rows > limit:
                raise _refuse(
                    _(
                        "'%(name)s' has more than %(limit)d data rows. Split the table or "
                        "keep the markets you need."
                    )
                    % {"name": source_name, "limit": limit}
                )
            for column, cell in zip(table.columns, cells, strict=True):
                if len(cell) > MAX_CELL_CHARS:
                    raise _refuse(
                        _(
                            "Row %(row)d, column '%(column)s' holds %(n)d characters; a cell "
                            "may hold %(limit)d at most."
                        )
                        % {
                            "row": row,
                            "column": column.name,
                            "n": len(cell),
                            "limit": MAX_CELL_CHARS,
                        }
                    )
            canonical = [
                c.add(row, cell, decimal_comma)
                for c, cell in zip(table.columns, cells, strict=True)
            ]
            if sink is not None:
                sink(canonical)
            if progress is not None and table.rows % 5000 == 0:
                progress(table.rows)
    except csv.Error as exc:
        raise _refuse(
            _(
                "Row %(row)d of '%(name)s' cannot be read as CSV (%(error)s). A cell probably "
                "lacks its closing double quote."
            )
            % {"row": row + 1, "name": source_name, "error": exc}
        ) from None
    if table is None:
        raise _refuse(
            _("'%(name)s' holds no header and no data: the file is empty.") % {"name": source_name}
        )
    if table.rows == 0:
        raise _refuse(
            _("'%(name)s' has a header but no data rows. Add one row per market.")
            % {"name": source_name}
        )
    return table


# --- detection --------------------------------------------------------------------------------


def _words(name: str) -> set[str]:
    return {w.lower() for w in _WORDS.findall(name)}


def _rows_text(examples: list[list[Any]], total: int) -> str:
    """Row 3 ('abc'), 17 ('n.a.'), … : the first examples, and an ellipsis when there are more."""
    shown = ", ".join(f"{row} ('{cell}')" for row, cell in examples)
    return shown + (", …" if total > len(examples) else "")


def _nearly_unique(unique: int, count: int) -> bool:
    """One value per market, give or take a data-entry slip: a name or a code, not a category."""
    return count >= 2 and (unique == count or (count >= 20 and unique >= 0.9 * count))


def _detect_type(p: dict[str, Any]) -> str:
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


def _type_problems(name: str, kind: str, p: dict[str, Any]) -> list[dict[str, Any]]:
    """Why the cells of column `name` do not fit type `kind`: errors a customer must fix."""
    problems = []
    if kind == "numeric":
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
                        "(NaN or infinity), in row %(rows)s. Write the number, or leave the "
                        "cell empty when the value is unknown.",
                        "Column '%(column)s' has %(n)d values that are not finite numbers "
                        "(NaN or infinity), in rows %(rows)s. Write the numbers, or leave the "
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
    elif kind == "boolean" and p["booleans"] != p["count"]:
        rows = p["not_boolean_examples"]
        problems.append(
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
        )
    return problems


def _column_entry(name: str, index: int, kind: str, role: str, p: dict[str, Any]) -> dict:
    """A schema column: what it is (type, role), what it holds (stats) and what is wrong."""
    if kind == "numeric":
        stats = {"min": p["min"], "max": p["max"], "mean": p["mean"]}
    elif kind == "text-id":
        stats = {"examples": p["first"]}
    else:
        stats = {"top": [{"value": v, "count": n} for v, n in p["top"]]}
    if p["unique_capped"]:
        stats["unique_capped"] = True
    problems = _type_problems(name, kind, p)
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
    if kind == "categorical" and p["numbers"] and p["not_numbers"]:
        problems.append(
            {
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
        )
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


def _detect(table: _Table) -> dict[str, Any]:
    columns = []
    for c in table.columns:
        p = c.profile()
        kind = _detect_type(p)
        columns.append(
            _column_entry(c.name, c.index, kind, _guess_role(c.name, kind, p, table.rows), p)
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


def _problem(code: str, message: str, severity: str = "blocking") -> dict[str, str]:
    return {"code": code, "severity": severity, "message": message}


def tabular_health(schema: dict[str, Any], row_count: int) -> dict[str, Any]:
    """Problems that would ruin training (errors) or deserve a look (warnings)."""
    problems: list[dict[str, str]] = []
    columns = schema.get("columns", [])
    target = next((c for c in columns if c["name"] == schema.get("target")), None)
    if target is None:
        problems.append(
            _problem(
                "no_target",
                _(
                    "No numeric target column was found. Choose the column to predict, or "
                    "name it 'target' in the file."
                ),
            )
        )
    elif target["type"] != "numeric":
        problems.append(
            _problem(
                "target_not_numeric",
                _("The target '%(column)s' is not numeric; choose a column of numbers to predict.")
                % {"column": target["name"]},
            )
        )
    else:
        p = target["profile"]
        if p["missing"]:
            rows = ", ".join(map(str, p["missing_rows"]))
            problems.append(
                _problem(
                    "target_missing",
                    ngettext(
                        "The target '%(column)s' is empty in %(n)d row (row %(rows)s): fill "
                        "it in or remove that row.",
                        "The target '%(column)s' is empty in %(n)d rows (rows %(rows)s): "
                        "fill them in or remove those rows.",
                        p["missing"],
                    )
                    % {"column": target["name"], "n": p["missing"], "rows": rows},
                )
            )
        if p["unique"] <= 1:
            problems.append(
                _problem(
                    "target_constant",
                    _("The target '%(column)s' has a single value: there is nothing to learn.")
                    % {"column": target["name"]},
                )
            )
    if not any(c["role"] == "feature" for c in columns):
        problems.append(
            _problem(
                "no_features",
                _("No column is used as a feature: set at least one column's role to feature."),
            )
        )
    if row_count < MIN_TRAINABLE_ROWS:
        problems.append(
            _problem(
                "too_few_rows",
                ngettext(
                    "The table has %(n)d row; a model needs at least %(min)d markets.",
                    "The table has %(n)d rows; a model needs at least %(min)d markets.",
                    row_count,
                )
                % {"n": row_count, "min": MIN_TRAINABLE_ROWS},
            )
        )
    for column in columns:
        if column["role"] == "ignore":
            continue
        for problem in column["problems"]:
            if problem["severity"] == "blocking" or column["role"] == "feature":
                problems.append(_problem(problem["code"], problem["message"], problem["severity"]))
    counts = schema.get("split", {}).get("counts", {})
    if counts and row_count >= MIN_TRAINABLE_ROWS:
        for name in SPLITS:
            if not counts.get(name):
                problems.append(
                    _problem(
                        "empty_split",
                        _("The %(split)s split is empty; change the split ratios.")
                        % {"split": name},
                    )
                )
    if schema.get("source", {}).get("blank_rows"):
        n = schema["source"]["blank_rows"]
        problems.append(
            _problem(
                "blank_rows",
                ngettext("%(n)d blank row was skipped.", "%(n)d blank rows were skipped.", n)
                % {"n": n},
                "warning",
            )
        )
    return {
        "problems": problems,
        "trainable": not any(p["severity"] == "blocking" for p in problems),
    }


# --- the upload and the worker ----------------------------------------------------------------


def inspect_csv(upload: Any) -> str:
    """Check an uploaded CSV from end to end before it is kept; returns the source kind "csv".

    Raises InvalidInput naming the problem, its row and column, and how to fix it.
    """
    name = upload.name
    if upload.size > max_bytes():
        raise _refuse(
            _("'%(name)s' is %(size)s; a table may be %(limit)s at most. Keep the rows you need.")
            % {"name": name, "size": human_size(upload.size), "limit": human_size(max_bytes())}
        )
    upload.seek(0)
    try:
        table = _scan(upload.file, source_name=name)
    finally:
        upload.seek(0)
    for column in table.columns:
        profile = column.profile()
        if _detect_type(profile) == "numeric":
            problems = _type_problems(column.name, "numeric", profile)
            if problems:
                raise _refuse(problems[0]["message"])
    return "csv"


def split_ratios(raw: dict[str, Any] | None) -> dict[str, float]:
    """The version's ratios, checked: train / validation / test, none negative, summing to 1."""
    if not raw:
        return dict(DEFAULT_RATIOS)
    try:
        ratios = {name: float(raw.get(name, 0)) for name in SPLITS}
    except (TypeError, ValueError):
        ratios = {}
    if (
        set(raw) - set(SPLITS)
        or not ratios
        or any(not math.isfinite(r) or r < 0 for r in ratios.values())
        or abs(sum(ratios.values()) - 1) > 1e-6
    ):
        raise InvalidInput(
            _(
                "Split ratios must give train, validation and test shares that add up to 1; "
                "got %(ratios)s."
            )
            % {"ratios": raw},
            field="split_ratios",
        )
    return ratios


def assign_splits(n: int, *, seed: int, ratios: dict[str, float]) -> list[str]:
    """The split of each of `n` rows: exact (rounded) counts, shuffled by `seed` alone."""
    n_test = round(n * ratios["test"])
    n_val = round(n * ratios["validation"])
    if n >= 3:  # a held-out set of a few markets beats none
        n_test = max(n_test, 1) if ratios["test"] else 0
        n_val = max(n_val, 1) if ratios["validation"] else 0
    n_val = min(n_val, n - n_test)
    labels = ["test"] * n_test + ["validation"] * n_val + ["train"] * (n - n_test - n_val)
    random.Random(seed).shuffle(labels)
    return labels


def _table_path(version: DatasetVersion) -> str:
    return (
        f"orgs/{version.organization_id}/datasets/{version.dataset_id}/v{version.number}/table.csv"
    )


def ingest_tabular(version: DatasetVersion) -> None:
    """Read a tabular version's CSV into the canonical table, its schema, splits and health."""
    reporter = ProgressReporter(version)
    reporter.report(force=True, message=_("Reading the table"), progress=0.0)
    ratios = split_ratios(version.split_ratios)
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as staging:
        writer = csv.writer(staging, lineterminator="\n")
        with version.source.open("rb") as source:
            table = _scan(
                source,
                source_name=version.source_name,
                sink=writer.writerow,
                progress=lambda rows: reporter.report(
                    progress=0.8 * min(1.0, source.tell() / max(1, version.source_size)),
                    message=_("Read %(n)d rows") % {"n": rows},
                ),
            )
        schema = _detect(table)
        splits = assign_splits(table.rows, seed=version.split_seed, ratios=ratios)
        schema["split"] = {
            "column": SPLIT_COLUMN,
            "seed": version.split_seed,
            "ratios": ratios,
            "counts": {name: splits.count(name) for name in SPLITS},
        }
        reporter.report(force=True, message=_("Writing the table"), progress=0.85)
        staging.seek(0)
        rows = csv.reader(staging)
        header = next(rows)
        with tempfile.TemporaryFile() as final:
            text = io.TextIOWrapper(final, encoding="utf-8", newline="")
            csv_safe.write_rows(
                text,
                itertools.chain(
                    [[*header, SPLIT_COLUMN]],
                    ([*row, split] for row, split in zip(rows, splits, strict=True)),
                ),
            )
            text.flush()
            text.detach()
            final.seek(0)
            path = _table_path(version)
            if version.data_file:
                version.data_file.delete(save=False)
            default_storage.delete(path)
            stored_name = default_storage.save(path, File(final, name="table.csv"))
    stored = default_storage.size(stored_name)
    health = tabular_health(schema, table.rows)
    message = ngettext(
        "Ready: %(n)d row, %(c)d columns; check the detected columns and confirm them",
        "Ready: %(n)d rows, %(c)d columns; check the detected columns and confirm them",
        table.rows,
    ) % {"n": table.rows, "c": len(table.columns)}
    job_finish(
        version,
        status=JobStatus.SUCCEEDED,
        message=message,
        data_file=stored_name,
        schema=schema,
        health=health,
        row_count=table.rows,
        split_ratios=ratios,
        stored_bytes=stored,
        confirmed_at=None,
    )


# --- after ingestion: confirmation and preview ------------------------------------------------


def tabular_version_confirm(
    *,
    version: DatasetVersion,
    user: Any,
    target: str | None = None,
    columns: dict[str, dict[str, str]] | None = None,
) -> DatasetVersion:
    """Record the customer's check of the detected columns: types, roles and the target.

    Every change is validated against what the cells hold (a column declared numeric must
    hold only numbers); the health report is recomputed and `confirmed_at` set.
    """
    columns = columns or {}
    with transaction.atomic():
        version = (
            DatasetVersion.objects.select_for_update().select_related("dataset").get(pk=version.pk)
        )
        _require_ready_table(version)
        schema = version.schema
        by_name = {c["name"]: c for c in schema["columns"]}
        unknown = [
            name for name in [*columns, *([target] if target else [])] if name not in by_name
        ]
        if unknown:
            raise InvalidInput(
                _("Unknown column '%(column)s'; the table's columns are: %(columns)s.")
                % {"column": unknown[0], "columns": ", ".join(by_name)},
                field="columns" if unknown[0] in columns else "target",
            )
        chosen = [n for n, change in columns.items() if (change or {}).get("role") == "target"]
        if len(chosen) > 1 or (chosen and target and chosen[0] != target):
            raise InvalidInput(
                _("Choose one target: %(columns)s were all given as the target.")
                % {"columns": ", ".join(sorted({*chosen, *([target] if target else [])}))},
                field="target",
            )
        target = target or (chosen[0] if chosen else schema.get("target"))
        updated = []
        for column in schema["columns"]:
            name = column["name"]
            change = columns.get(name) or {}
            if not isinstance(change, dict):
                raise InvalidInput(
                    _("columns.%(column)s must be an object with 'type' and/or 'role'.")
                    % {"column": name},
                    field="columns",
                )
            kind = change.get("type", column["type"])
            role = change.get("role", column["role"])
            if kind not in TYPES:
                raise InvalidInput(
                    _("Column '%(column)s': type must be one of %(types)s; got '%(got)s'.")
                    % {"column": name, "types": ", ".join(TYPES), "got": kind},
                    field="columns",
                )
            if role not in ROLES:
                raise InvalidInput(
                    _("Column '%(column)s': role must be one of %(roles)s; got '%(got)s'.")
                    % {"column": name, "roles": ", ".join(ROLES), "got": role},
                    field="columns",
                )
            if name == target:
                if "role" in change and role != "target":
                    raise InvalidInput(
                        _("Column '%(column)s' is the target; it cannot have the role %(role)s.")
                        % {"column": name, "role": role},
                        field="columns",
                    )
                role = "target"
            elif role == "target":
                role = "feature"  # the target moved to another column
            if kind == "text-id" and role == "feature":
                raise InvalidInput(
                    _(
                        "Column '%(column)s' is text-id (a name or code per market) and cannot "
                        "be a feature; declare it categorical or give it the role id or ignore."
                    )
                    % {"column": name},
                    field="columns",
                )
            entry = _column_entry(name, column["index"], kind, role, column["profile"])
            errors = [p for p in entry["problems"] if p["severity"] == "blocking"]
            if kind != column["type"] and errors:
                raise InvalidInput(errors[0]["message"], field="columns")
            updated.append(entry)
        target_column = next((c for c in updated if c["name"] == target), None)
        if target_column is not None and target_column["type"] != "numeric":
            raise InvalidInput(
                _(
                    "The target '%(column)s' is %(type)s; the target must be numeric (this "
                    "portal trains regression models)."
                )
                % {"column": target, "type": target_column["type"]},
                field="target",
            )
        schema = {**schema, "columns": updated, "target": target}
        version.schema = schema
        version.health = tabular_health(schema, version.row_count)
        version.confirmed_at = timezone.now()
        version.save(update_fields=["schema", "health", "confirmed_at", "updated_at"])
        audit_record(
            organization=version.organization,
            actor=user,
            action="dataset_version.confirm",
            target=version,
            data={"target": target, "columns": columns},
        )
    return version


def _require_ready_table(version: DatasetVersion) -> None:
    if version.dataset.kind != DatasetKind.TABULAR:
        raise InvalidInput(
            _("Version %(number)d of '%(dataset)s' holds images, not a table.")
            % {"number": version.number, "dataset": version.dataset.name}
        )
    if not version.is_ready or not version.data_file or not version.schema.get("columns"):
        raise Conflict(
            _("The table is not ready (%(status)s); try again once it has been read.")
            % {"status": version.get_status_display()}
        )


def iter_table(version: DatasetVersion) -> Iterator[list[str]]:
    """The canonical table's rows, header first (its last column is __split)."""
    with version.data_file.open("rb") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        try:
            yield from csv.reader(text)
        finally:
            text.detach()


def tabular_page(
    version: DatasetVersion, *, page: int = 1, page_size: int = PREVIEW_PAGE_SIZE
) -> dict[str, Any]:
    """One page of the canonical table, for a preview: its columns and `page_size` rows."""
    _require_ready_table(version)
    pages = max(1, math.ceil(version.row_count / page_size))
    if page < 1 or page > pages:
        raise InvalidInput(
            _("page must be between 1 and %(pages)d; got %(page)d.")
            % {"pages": pages, "page": page},
            field="page",
        )
    rows = iter_table(version)
    header = next(rows)
    start = (page - 1) * page_size
    chosen = list(itertools.islice(rows, start, start + page_size))
    rows.close()
    return {
        "count": version.row_count,
        "page": page,
        "pages": pages,
        "page_size": page_size,
        "columns": header,
        "rows": chosen,
    }
