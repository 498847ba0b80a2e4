"""The train / validation / test split of a table's rows, kept in the canonical table's
``__split`` column: drawn once at ingestion from the version's ratios and seed."""

from __future__ import annotations

import random
from typing import Any

from django.utils.translation import gettext as _

from apps.core.errors import InvalidInput
from workers.ml import cells

SPLIT_COLUMN = "__split"


def split_ratios(raw: dict[str, Any] | None) -> dict[str, float]:
    """The version's ratios, checked: train / validation / test, none negative, summing to 1."""
    try:
        return cells.check_split_ratios(raw)
    except ValueError:
        raise InvalidInput(
            _(
                "Split ratios must give train, validation and test shares that add up to 1; "
                "got %(ratios)s."
            )
            % {"ratios": raw},
            field="split_ratios",
        ) from None


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
