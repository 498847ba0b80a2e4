"""Reading a customer's CSV: the bytes checked and decoded as UTF-8 a line at a time, the
delimiter sniffed, the header and every row checked against the limits, each cell handed to its
column's profile. Whatever cannot become a table is refused naming the row and the column.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.core import csv_safe
from apps.core.errors import InvalidInput
from apps.core.text import human_size
from apps.datasets.tabular.profiling import ColumnProfile
from apps.datasets.tabular.splits import SPLIT_COLUMN
from workers.ml import cells

SAMPLE_LINES = 50
MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_CELL_CHARS = 64 * 1024

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


@dataclass
class Table:
    source_name: str
    delimiter: str
    bom: bool
    decimal_comma: bool
    columns: list[ColumnProfile]
    rows: int = 0
    blank_rows: int = 0


def refuse(message: str) -> InvalidInput:
    return InvalidInput(message, field="file")


def _check_head(head: bytes, name: str) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise refuse(
            _("'%(name)s' is saved as UTF-16; save it as UTF-8 and upload it again. %(how)s")
            % {"name": name, "how": _SAVE_AS_UTF8}
        )
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise refuse(
                _(
                    "'%(name)s' is %(what)s, not a CSV text file. Save the table as CSV "
                    "(UTF-8) and upload that file. %(how)s"
                )
                % {"name": name, "what": what, "how": _SAVE_AS_UTF8}
            )
    if b"\x00" in head:
        raise refuse(
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
            raise refuse(
                _(
                    "Line %(line)d of '%(name)s' is longer than %(limit)s. Check that the "
                    "file is a table with one market per line (lines ending in a carriage "
                    "return only are not supported: save as 'CSV UTF-8')."
                )
                % {"line": number, "name": name, "limit": human_size(MAX_LINE_BYTES)}
            )
        if b"\x00" in raw:
            raise refuse(
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
            raise refuse(
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
    return bool(cells.NUMBER.fullmatch(name)) and not re.fullmatch(r"\d{1,4}", name)


def _check_header(names: list[str], source_name: str, row: int) -> None:
    data_like = [(i, n) for i, n in enumerate(names, start=1) if _looks_like_data(n)]
    if data_like:
        index, cell = data_like[0]
        raise refuse(
            _(
                "Row %(row)d of '%(name)s' holds data ('%(cell)s' in column %(index)d), not "
                "column names: the header is missing. Add a first row that names each column, "
                "e.g. market,region,population,price."
            )
            % {"row": row, "name": source_name, "cell": cell, "index": index}
        )
    if len(names) > max_columns():
        raise refuse(
            _(
                "'%(name)s' has %(n)d columns; at most %(limit)d are allowed. Remove the "
                "columns the model does not need."
            )
            % {"name": source_name, "n": len(names), "limit": max_columns()}
        )
    if len(names) < 2:
        raise refuse(
            _(
                "'%(name)s' has a single column ('%(column)s'): a table needs at least one "
                "feature and a target. Separate the columns with commas, semicolons or tabs."
            )
            % {"name": source_name, "column": names[0] if names else ""}
        )
    empty = [str(i) for i, n in enumerate(names, start=1) if not n]
    if empty:
        raise refuse(
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
    _check_unique(names)


def _check_unique(names: list[str]) -> None:
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
        raise refuse(
            _(
                "The header names a column more than once: %(listed)s. Column names must be "
                "unique: rename the copies."
            )
            % {"listed": listed}
        )
    if SPLIT_COLUMN in positions:
        raise refuse(
            _("The column name '%(column)s' is reserved by the portal; rename that column.")
            % {"column": SPLIT_COLUMN}
        )


def scan_csv(
    handle: IO[bytes],
    *,
    source_name: str,
    sink: Callable[[list[str]], Any] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Table:
    """Read a CSV once, streaming; refuse what cannot be a table. `sink` gets canonical rows."""
    info: dict[str, Any] = {"bom": False}
    lines = _lines(handle, source_name, info)
    sample = list(itertools.islice(lines, SAMPLE_LINES))
    delimiter = _sniff(sample)
    decimal_comma = delimiter != ","
    reader = csv.reader(itertools.chain(sample, lines), delimiter=delimiter)
    table: Table | None = None
    limit = max_rows()
    row = 0
    try:
        for found in reader:
            row += 1
            if not any(c.strip() for c in found):
                if table is not None:
                    table.blank_rows += 1
                continue
            if table is None:
                names = [csv_safe.neutralize(c.strip()) for c in found]
                _check_header(names, source_name, row)
                table = _new_table(names, source_name, delimiter, info["bom"])
                if sink is not None:
                    sink(names)
                continue
            row_cells = _checked_row(found, table, row)
            table.rows += 1
            if table.rows > limit:
                raise refuse(
                    _(
                        "'%(name)s' has more than %(limit)d data rows. Split the table or "
                        "keep the markets you need."
                    )
                    % {"name": source_name, "limit": limit}
                )
            canonical = [
                c.add(row, cell, decimal_comma)
                for c, cell in zip(table.columns, row_cells, strict=True)
            ]
            if sink is not None:
                sink(canonical)
            if progress is not None and table.rows % 5000 == 0:
                progress(table.rows)
    except csv.Error as exc:
        raise refuse(
            _(
                "Row %(row)d of '%(name)s' cannot be read as CSV (%(error)s). A cell probably "
                "lacks its closing double quote."
            )
            % {"row": row + 1, "name": source_name, "error": exc}
        ) from None
    return _complete(table, source_name)


def _new_table(names: list[str], source_name: str, delimiter: str, bom: bool) -> Table:
    # Distinct values are counted up to a cap, so a wide table of ids stays in bounded memory.
    cap = min(10_000, max(1_000, 1_000_000 // len(names)))
    columns = [ColumnProfile(name=n, index=i, unique_cap=cap) for i, n in enumerate(names)]
    return Table(source_name, delimiter, bom, delimiter != ",", columns)


def _checked_row(found: list[str], table: Table, row: int) -> list[str]:
    """A data row's cells, once its width and cell lengths are checked."""
    width = len(table.columns)
    if len(found) > width and not any(c.strip() for c in found[width:]):
        found = found[:width]  # trailing empty cells some spreadsheets add
    if len(found) != width:
        raise refuse(
            _(
                "Row %(row)d has %(found)d cells but the header names %(expected)d "
                "columns. Check that row's delimiters ('%(delimiter)s') and quotes: a "
                "value holding the delimiter must be in double quotes."
            )
            % {
                "row": row,
                "found": len(found),
                "expected": width,
                "delimiter": "\\t" if table.delimiter == "\t" else table.delimiter,
            }
        )
    for column, cell in zip(table.columns, found, strict=True):
        if len(cell) > MAX_CELL_CHARS:
            raise refuse(
                _(
                    "Row %(row)d, column '%(column)s' holds %(n)d characters; a cell "
                    "may hold %(limit)d at most."
                )
                % {"row": row, "column": column.name, "n": len(cell), "limit": MAX_CELL_CHARS}
            )
    return found


def _complete(table: Table | None, source_name: str) -> Table:
    if table is None:
        raise refuse(
            _("'%(name)s' holds no header and no data: the file is empty.") % {"name": source_name}
        )
    if table.rows == 0:
        raise refuse(
            _("'%(name)s' has a header but no data rows. Add one row per market.")
            % {"name": source_name}
        )
    return table
