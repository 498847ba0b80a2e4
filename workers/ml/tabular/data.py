"""The table a regression model learns from, and how its cells are read.

Cells follow the portal's one vocabulary (workers.ml.cells), so a cell that upload profiling
counted as missing, a number or a yes/no is read the same way here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.ml import cells

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)
SPLITS = cells.SPLITS


@dataclass(frozen=True)
class TabularColumn:
    """One feature column.

    ``kind`` "numeric": cells are numbers (int, float, or text such as "12.5"); a boolean column
    is numeric with 0/1 (or True/False). ``kind`` "categorical": cells are labels, compared as
    trimmed text. In both, None, NaN and empty or "NA"-like text mean the value is missing.
    """

    name: str
    kind: str
    values: Sequence[Any]


@dataclass(frozen=True)
class TabularData:
    """A table for regression: feature ``columns``, a ``target`` and a split for every row.

    ``target`` cells are numbers or numeric text; rows whose target is missing are left out of
    training and evaluation (``RegressionResult.skipped_rows`` counts them). ``splits`` holds
    "train", "validation" or "test" per row. Row i is ``column.values[i]`` for every column.

    Raises:
        ValueError: naming the column or row, for unequal lengths, an unknown kind or split,
            duplicate or empty column names, or no columns at all.
    """

    columns: Sequence[TabularColumn]
    target: Sequence[Any]
    splits: Sequence[str]
    target_name: str = "target"

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError("a table needs at least one feature column")
        names = [column.name for column in self.columns]
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError("feature column names must be non-empty text")
        if len(set(names)) != len(names):
            duplicate = next(name for name in names if names.count(name) > 1)
            raise ValueError(f"feature column {duplicate!r} appears twice")
        rows = len(self.target)
        for column in self.columns:
            if column.kind not in KINDS:
                raise ValueError(
                    f"column {column.name!r} has kind {column.kind!r}; use 'numeric' or "
                    "'categorical'"
                )
            if len(column.values) != rows:
                raise ValueError(
                    f"column {column.name!r} has {len(column.values)} values for {rows} rows"
                )
        if len(self.splits) != rows:
            raise ValueError(f"splits has {len(self.splits)} entries for {rows} rows")
        for index, split in enumerate(self.splits):
            if split not in SPLITS:
                raise ValueError(
                    f"data row {index + 1} has split {split!r}; use train, validation or test"
                )

    @property
    def rows(self) -> int:
        """Number of rows."""
        return len(self.target)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        features: Mapping[str, str],
        target: str,
        split_key: str = "__split",
    ) -> TabularData:
        """Build from row dicts, e.g. ``csv.DictReader`` over a canonical tabular version.

        ``features`` maps each feature column name to its kind, in the order to use.
        A record without a feature key counts as a missing value there.

        Raises:
            ValueError: as for the constructor, or naming a record without ``split_key``.
        """
        values: dict[str, list[Any]] = {name: [] for name in features}
        targets: list[Any] = []
        splits: list[str] = []
        for index, record in enumerate(records):
            if split_key not in record:
                raise ValueError(f"data row {index + 1} has no {split_key!r} value")
            for name in features:
                values[name].append(record.get(name))
            targets.append(record.get(target))
            splits.append(record[split_key])
        return cls(
            columns=[TabularColumn(name, kind, values[name]) for name, kind in features.items()],
            target=targets,
            splits=splits,
            target_name=target,
        )


def number_cell(value: Any, *, where: str) -> float | None:
    """A cell as a finite float, or None when missing (workers.ml.cells decides which is which).

    Raises:
        ValueError: prefixed with ``where``, for a cell that is not a finite number.
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the range of a float
            number = math.inf
        if math.isnan(number):
            return None
        if not math.isfinite(number):
            raise ValueError(f"{where}: {value!r} is not a finite number")
        return number
    if value is None:
        return None
    try:
        return cells.read_number(str(value))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def category_cell(value: Any) -> str:
    """A cell as a category; every missing value is the empty category."""
    text = cells.category(value)
    return "" if text is None else text


def target_value(data: TabularData, row: int) -> float | None:
    """Row ``row``'s target as a float, None when missing."""
    return number_cell(data.target[row], where=f"target {data.target_name!r}, data row {row + 1}")
