"""The one vocabulary of dataset values, shared by upload profiling, ingestion, row prediction and
the ML core: which table cells mean "missing", "true", "false" or a number, and how data sets are
split. Django-free, so the worker's ML code and the portal read cells exactly alike.

The rules, for a cell's text trimmed of spaces and compared in any case:

- **missing**: empty, ``NA``, ``N/A``, ``#N/A``, ``null``, ``None``, ``NaN`` (also ``+nan`` and
  ``-nan``) and ``-``: what spreadsheets, pandas, R and Python write for "unknown". "None" and
  "NaN" are never a category and never a number.
- **a number**: digits with a dot as the decimal mark, an optional sign and exponent
  (``12``, ``-3.5``, ``.5``, ``1e6``). A decimal comma (``1,5``) is a number only where a table
  says so (semicolon and tab files at upload); ``1_000`` or ``12 million`` are not numbers.
  Digits of other scripts count as digits (``١٢`` is 12), as Python reads them.
- **not a finite number**: ``inf``, ``infinity`` (signed or not) and numbers beyond a float
  (``1e999``). They are never a value a model can use: refused in a numeric column everywhere
  (a blocking problem at upload, an error in training, a 400 at prediction), kept as text in a
  categorical one.
- **yes / no**: ``true yes y t 1`` and ``false no n f 0``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

#: the three splits of every data set, in order
SPLITS: tuple[str, str, str] = ("train", "validation", "test")
#: shares of each split unless a version says otherwise (stratified per class for images)
DEFAULT_SPLIT_RATIOS: dict[str, float] = {"train": 0.7, "validation": 0.15, "test": 0.15}

MISSING_TOKENS: frozenset[str] = frozenset(
    {"", "na", "n/a", "#n/a", "null", "none", "nan", "+nan", "-nan", "-"}
)
NONFINITE_TOKENS: frozenset[str] = frozenset(
    {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
TRUE_TOKENS: frozenset[str] = frozenset({"true", "yes", "y", "t", "1"})
FALSE_TOKENS: frozenset[str] = frozenset({"false", "no", "n", "f", "0"})
BOOLEAN_TOKENS: frozenset[str] = TRUE_TOKENS | FALSE_TOKENS

#: a number written with a dot; Python's float() alone would also take "1_000" and "nan"
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")


class NotANumber(ValueError):
    """A cell that should hold a number holds text that writes none."""


class NonFiniteNumber(ValueError):
    """A cell writes infinity or a number too large for a float: no model can use it."""


def is_missing(cell: Any) -> bool:
    """Whether a cell means "unknown": None, a float NaN, or one of the missing tokens."""
    if cell is None:
        return True
    if isinstance(cell, float):
        return math.isnan(cell)
    if isinstance(cell, str):
        return cell.strip().lower() in MISSING_TOKENS
    return False


def number_or_none(text: str) -> float | None:
    """The float a trimmed, not-missing cell writes, or None when it writes no number.

    Infinity tokens and numbers beyond a float give ±inf, for the caller to refuse. Upload
    profiling calls this for every cell, so it raises nothing and stays a regex and a lookup.
    """
    if NUMBER.fullmatch(text):
        return float(text)
    lowered = text.lower()
    if lowered in NONFINITE_TOKENS:
        return -math.inf if lowered.startswith("-") else math.inf
    return None


def read_number(text: str) -> float | None:
    """A cell's text as a finite float, or None when the cell is missing.

    Raises:
        NotANumber: for text that writes no number ("abc", "1,5", "12 million").
        NonFiniteNumber: for infinity or a number beyond a float ("1e999").
    """
    text = text.strip()
    if text.lower() in MISSING_TOKENS:
        return None
    number = number_or_none(text)
    if number is None:
        raise NotANumber(f"{text[:40]!r} is not a number")
    if not math.isfinite(number):
        raise NonFiniteNumber(f"{text[:40]!r} is not a finite number")
    return number


def decimal_point(text: str) -> str | None:
    """``1,5`` as ``1.5``: the text with its decimal comma made a point, or None when the
    text is not a number written with a decimal comma."""
    if "," in text and DECIMAL_COMMA.fullmatch(text):
        return text.replace(",", ".")
    return None


def boolean_value(cell: str) -> bool | None:
    """A yes/no cell as True / False; None when missing or not a yes/no token."""
    token = cell.strip().lower()
    if token in TRUE_TOKENS:
        return True
    if token in FALSE_TOKENS:
        return False
    return None


def category(cell: Any) -> str | None:
    """A cell as a category, trimmed text; None when missing."""
    if is_missing(cell):
        return None
    return str(cell).strip()


def check_split_ratios(
    raw: Mapping[str, Any] | None, *, train_required: bool = False
) -> dict[str, float]:
    """A version's split ratios, or the default when none are given.

    Raises:
        ValueError: unless the shares are train / validation / test, none negative or
            non-finite, adding up to 1 (and, with ``train_required``, a share for train).
    """
    if not raw:
        return dict(DEFAULT_SPLIT_RATIOS)
    try:
        ratios = {name: float(raw.get(name, 0.0)) for name in SPLITS}
    except (AttributeError, TypeError, ValueError):
        ratios = {}
    if (
        not ratios
        or set(raw) - set(SPLITS)
        or any(not math.isfinite(share) or share < 0 for share in ratios.values())
        or (train_required and ratios["train"] <= 0)
        or abs(sum(ratios.values()) - 1) > 1e-6
    ):
        raise ValueError(f"split ratios {raw!r} are not train/validation/test shares adding to 1")
    return ratios
