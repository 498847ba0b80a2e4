"""How a table becomes model inputs: scaling, missing values and one-hot categories, fitted on
the training rows and stored in the model bundle, so serving encodes rows exactly as training did.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workers.ml.tabular.data import (
    CATEGORICAL,
    NUMERIC,
    TabularData,
    category_cell,
    number_cell,
    target_value,
)

#: categories beyond the most frequent ones share the "other" column
MAX_CATEGORIES = 100


@dataclass(frozen=True)
class ColumnEncoding:
    """How one column becomes model inputs.

    Numeric: ``(value - mean) / std`` (the training rows' mean and standard deviation); a
    missing value becomes the mean (0 after scaling) and, if ``missing_indicator``, sets an
    extra 0/1 input. Categorical: one 0/1 input per category in ``categories`` plus a last one
    for any other value (unseen or rare); a missing value is the category "".
    """

    name: str
    kind: str
    mean: float = 0.0
    std: float = 1.0
    missing_indicator: bool = False
    categories: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        """Number of model inputs this column produces."""
        if self.kind == NUMERIC:
            return 1 + int(self.missing_indicator)
        return len(self.categories) + 1

    @property
    def feature_names(self) -> list[str]:
        """Human-readable names of this column's inputs."""
        if self.kind == NUMERIC:
            return [self.name] + ([f"{self.name} (missing)"] if self.missing_indicator else [])
        shown = [c if c else "(missing)" for c in self.categories]
        return [f"{self.name}={c}" for c in shown] + [f"{self.name}=(other)"]


@dataclass(frozen=True)
class TabularPreprocessor:
    """The encoding of a table fitted on its training rows, and the target's scaling.

    The model is trained on the target scaled to mean 0 and standard deviation 1 (so one
    learning rate suits prices and percentages alike); :meth:`unscale_target` undoes it.
    """

    columns: tuple[ColumnEncoding, ...]
    target_name: str
    target_mean: float
    target_std: float

    @classmethod
    def fit(
        cls, data: TabularData, rows: Sequence[int], *, max_categories: int = MAX_CATEGORIES
    ) -> TabularPreprocessor:
        """Fit on the rows ``rows`` of ``data`` (the training rows with a known target).

        Raises:
            ValueError: for no rows, a cell that is not a number in a numeric column, or a
                missing target among ``rows``.
        """
        if not rows:
            raise ValueError("cannot fit a preprocessor on no rows")
        encodings: list[ColumnEncoding] = []
        for column in data.columns:
            if column.kind == NUMERIC:
                numbers = [
                    number_cell(column.values[i], where=f"column {column.name!r}, data row {i + 1}")
                    for i in rows
                ]
                known = np.array([n for n in numbers if n is not None], dtype=np.float64)
                mean = float(known.mean()) if known.size else 0.0
                std = float(known.std()) if known.size else 0.0
                encodings.append(
                    ColumnEncoding(
                        column.name,
                        NUMERIC,
                        mean=mean,
                        std=std if std > 0 else 1.0,
                        missing_indicator=known.size < len(numbers),
                    )
                )
            else:
                counts = Counter(category_cell(column.values[i]) for i in rows)
                # The most frequent categories, then in name order so the layout is readable.
                kept = sorted(c for c, _ in counts.most_common(max_categories))
                encodings.append(ColumnEncoding(column.name, CATEGORICAL, categories=tuple(kept)))
        targets = np.array([target_value(data, i) for i in rows], dtype=np.float64)
        std = float(targets.std())
        return cls(
            columns=tuple(encodings),
            target_name=data.target_name,
            target_mean=float(targets.mean()),
            target_std=std if std > 0 else 1.0,
        )

    @property
    def width(self) -> int:
        """Length of an encoded row."""
        return sum(column.width for column in self.columns)

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded inputs, in order."""
        return [name for column in self.columns for name in column.feature_names]

    def transform(self, data: TabularData, rows: Sequence[int]) -> np.ndarray:
        """Encode rows ``rows`` of ``data`` as float32 (len(rows), width).

        Raises:
            ValueError: naming column and row, for a non-number in a numeric column, or a
                column of the fitted table missing from ``data``.
        """
        by_name = {column.name: column for column in data.columns}
        out = np.zeros((len(rows), self.width), dtype=np.float32)
        offset = 0
        for encoding in self.columns:
            column = by_name.get(encoding.name)
            if column is None:
                raise ValueError(f"the table has no column {encoding.name!r}")
            cells = [column.values[i] for i in rows]
            self._encode(encoding, cells, out, offset, [i + 1 for i in rows])
            offset += encoding.width
        return out

    def transform_row(self, row: Mapping[str, Any]) -> np.ndarray:
        """Encode one row dict ({column name: cell}) as float32 (width,).

        A column missing from ``row`` counts as a missing value; other keys are ignored.
        """
        out = np.zeros((1, self.width), dtype=np.float32)
        offset = 0
        for encoding in self.columns:
            self._encode(encoding, [row.get(encoding.name)], out, offset, None)
            offset += encoding.width
        return out[0]

    def scale_target(self, values: np.ndarray) -> np.ndarray:
        """Target values in the units the model learns."""
        return (values - self.target_mean) / self.target_std

    def unscale_target(self, values: np.ndarray) -> np.ndarray:
        """Model outputs back in the target's units."""
        return values * self.target_std + self.target_mean

    def to_dict(self) -> dict[str, Any]:
        """Plain data, stored in the model bundle."""
        data = dataclasses.asdict(self)
        data["columns"] = [
            dataclasses.asdict(c) | {"categories": list(c.categories)} for c in self.columns
        ]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TabularPreprocessor:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: if ``data`` does not have the expected shape.
        """
        try:
            return cls(
                columns=tuple(
                    ColumnEncoding(
                        name=str(c["name"]),
                        kind=str(c["kind"]),
                        mean=float(c["mean"]),
                        std=float(c["std"]),
                        missing_indicator=bool(c["missing_indicator"]),
                        categories=tuple(str(v) for v in c["categories"]),
                    )
                    for c in data["columns"]
                ),
                target_name=str(data["target_name"]),
                target_mean=float(data["target_mean"]),
                target_std=float(data["target_std"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a serialised TabularPreprocessor: {exc!r}") from exc

    @staticmethod
    def _encode(
        encoding: ColumnEncoding,
        cells: Sequence[Any],
        out: np.ndarray,
        offset: int,
        row_numbers: Sequence[int] | None,
    ) -> None:
        if encoding.kind == NUMERIC:
            for r, cell in enumerate(cells):
                where = f"column {encoding.name!r}" + (
                    f", data row {row_numbers[r]}" if row_numbers is not None else ""
                )
                number = number_cell(cell, where=where)
                if number is None:
                    if encoding.missing_indicator:
                        out[r, offset + 1] = 1.0
                else:
                    out[r, offset] = (number - encoding.mean) / encoding.std
            return
        position = {category: i for i, category in enumerate(encoding.categories)}
        other = len(encoding.categories)
        for r, cell in enumerate(cells):
            out[r, offset + position.get(category_cell(cell), other)] = 1.0
