"""Generated market tables: one row per market, in many scripts, as the CSV files customers send.

`market_rows()` gives the values; `market_csv()` writes them with a chosen delimiter, with or
without a UTF-8 byte-order mark, with decimal commas (as European spreadsheets write them next to
semicolons), and with any rows or cells swapped for broken ones.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Sequence

HEADER = [
    "market",
    "region",
    "population_m",
    "gdp_per_capita",
    "internet_share",
    "coastal",
    "demand",
]

#: (market, region): names in Chinese, Arabic, Cyrillic, Greek, Hangul, Thai, Devanagari,
#: Latin with accents, and one holding a comma and one an apostrophe (quoted in the CSV).
MARKETS = [
    ("中国", "Asia"),
    ("日本", "Asia"),
    ("대한민국", "Asia"),
    ("ประเทศไทย", "Asia"),
    ("भारत", "Asia"),
    ("Việt Nam", "Asia"),
    ("مصر", "Africa"),
    ("المغرب", "Africa"),
    ("Côte d'Ivoire", "Africa"),
    ("Nigeria", "Africa"),
    ("Kenya", "Africa"),
    ("Россия", "Europe"),
    ("Ελλάδα", "Europe"),
    ("Deutschland", "Europe"),
    ("España", "Europe"),
    ("Türkiye", "Europe"),
    ("Polska", "Europe"),
    ("Brasil", "Americas"),
    ("México", "Americas"),
    ("Perú", "Americas"),
    ("Canada", "Americas"),
    ("Korea, Republic of", "Asia"),
    ("São Tomé and Príncipe", "Africa"),
    ("Ísland", "Europe"),
]


def market_rows(n: int = 24, *, seed: int = 0) -> list[list[object]]:
    """`n` markets (at most len(MARKETS)) with numeric features, a region and a demand target."""
    rng = random.Random(seed)
    rows: list[list[object]] = []
    for market, region in MARKETS[:n]:
        population = round(rng.uniform(0.3, 1400.0), 2)
        gdp = round(rng.uniform(800.0, 65000.0), 1)
        internet = round(rng.uniform(0.2, 0.99), 3)
        coastal = rng.choice(["yes", "no"])
        demand = round(0.002 * gdp + 3.0 * internet + 0.01 * population + rng.gauss(0, 1), 3)
        rows.append([market, region, population, gdp, internet, coastal, demand])
    return rows


def market_csv(
    *,
    delimiter: str = ",",
    bom: bool = False,
    decimal_comma: bool = False,
    n: int = 24,
    header: Sequence[str] | None = None,
    rows: Sequence[Sequence[object]] | None = None,
    line_end: str = "\r\n",
) -> bytes:
    """The market table as CSV bytes (UTF-8), as a spreadsheet would save it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(list(HEADER if header is None else header))
    for row in market_rows(n) if rows is None else rows:
        cells = [str(cell) for cell in row]
        if decimal_comma:
            cells = [
                _decimal_comma(cell) if isinstance(v, float) else cell
                for cell, v in zip(cells, row, strict=True)
            ]
        writer.writerow(cells)
    data = buffer.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def _decimal_comma(cell: str) -> str:
    return cell.replace(".", ",")


def with_cell(row_index: int, column: str, value: object, n: int = 24) -> list[list[object]]:
    """The market rows with one cell replaced (`row_index` counts data rows from 0)."""
    rows = market_rows(n)
    rows[row_index][HEADER.index(column)] = value
    return rows
