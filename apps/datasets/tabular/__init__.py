"""Tabular datasets (market data): read a customer's CSV, detect its columns, keep a canonical copy.

Modules: ``reading`` (bytes, delimiters, limits, rows), ``profiling`` (column types, roles and
the target), ``health`` (the health report), ``splits`` and ``services`` (upload check,
ingestion, confirmation, preview). The names below are the package's API.

Two entry points, both called by apps.datasets.services:

- `inspect_csv(upload)` runs in the upload request, before anything is stored. It streams the
  whole file once and refuses (InvalidInput, 400) what cannot become a table: another encoding
  than UTF-8, a binary file, an empty file, a missing, empty or duplicated header name, ragged
  rows, no data rows, too many rows, columns or bytes, and cells that are not numbers (or are
  infinite) in a column of numbers. The customer learns at once, naming row and column.
- `ingest_tabular(version)` runs on the worker in the version's tenant scope. It reads the file
  again with the same code, writes the canonical table, detects types, roles and the target,
  draws the splits and writes the health report.

Input: UTF-8 with or without a byte-order mark; comma, semicolon or tab, sniffed from the first
lines; a header row is required; in semicolon and tab files a decimal comma (``1,5``) is read
as a decimal point. Cells are read by the portal's one vocabulary (workers.ml.cells), as
training and row prediction read them: empty, ``NA``, ``N/A``, ``#N/A``, ``null``, ``None``,
``NaN`` or ``-`` (any case) are missing. Rows that are entirely blank are dropped and counted.
"Row N" in every message counts like a spreadsheet: the header is row 1, the first market is
row 2.

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
  `workers.ml.cells.boolean_value`, categorical one-hot; text-id columns are never features)
  to predict the "target" column, a numeric one.
- ``version.health``: ``{"problems": [{"code", "severity", "message"}], "trainable": bool}``;
  any problem of severity "blocking" makes the version untrainable.
- ``version.confirmed_at``: set by `tabular_version_confirm` once the customer has checked (and
  possibly changed) the detected types, roles and target.
"""

from __future__ import annotations

from apps.datasets.tabular.health import tabular_health
from apps.datasets.tabular.profiling import ROLES, TYPES
from apps.datasets.tabular.services import (
    ingest_tabular,
    inspect_csv,
    iter_table,
    tabular_page,
    tabular_version_confirm,
)
from apps.datasets.tabular.splits import SPLIT_COLUMN, assign_splits, split_ratios

__all__ = [
    "ROLES",
    "SPLIT_COLUMN",
    "TYPES",
    "assign_splits",
    "ingest_tabular",
    "inspect_csv",
    "iter_table",
    "split_ratios",
    "tabular_health",
    "tabular_page",
    "tabular_version_confirm",
]
