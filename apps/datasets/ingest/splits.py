"""The train / validation / test split of an image version's items: stratified per class,
deterministic from a seed, whatever the order the images came in."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from apps.core.errors import InvalidInput
from workers.ml.cells import DEFAULT_SPLIT_RATIOS, check_split_ratios

#: shares of each class held out for validation and for the final test, unless the version says
VALIDATION_SHARE = DEFAULT_SPLIT_RATIOS["validation"]
TEST_SHARE = DEFAULT_SPLIT_RATIOS["test"]
SPLIT_SEED = 0


def split_ratios(raw: Any) -> dict[str, float]:
    """A version's split ratios, or the default 70/15/15; refuses shares that make no sense."""
    try:
        return check_split_ratios(raw, train_required=True)
    except ValueError:
        raise InvalidInput(
            f"Split ratios must give train, validation and test shares that add up to 1, with "
            f"a share for train; got {raw}.",
            field="split_ratios",
        ) from None


def split_sizes(n: int, ratios: dict[str, float]) -> tuple[int, int]:
    """(test, validation) sizes of a class of n: rounded shares, at least one each from n = 3."""

    def size(share: float) -> int:
        if not share or n < 3:
            return 0
        return max(1, int(n * share + 0.5))

    n_test, n_val = size(ratios["test"]), size(ratios["validation"])
    while n_test + n_val >= n and (n_test or n_val):  # keep at least one image to train on
        if n_val >= n_test and n_val:
            n_val -= 1
        else:
            n_test -= 1
    return n_test, n_val


def assign_splits(
    labels_by_key: dict[str, str],
    *,
    seed: int = SPLIT_SEED,
    ratios: dict[str, float] | None = None,
    existing: dict[str, dict[str, int]] | None = None,
) -> dict[str, str]:
    """Deterministic stratified split: same items and seed, same split, whatever the order.

    Each class with at least 3 images gets at least one validation and one test image.
    `existing` ({label: {split: n}}) counts items that already have a split and keep it (a
    derived version): the new ones fill what each split lacks of its share of the new total.
    """
    ratios = ratios or DEFAULT_SPLIT_RATIOS
    existing = existing or {}
    by_label: dict[str, list[str]] = defaultdict(list)
    for key, label in labels_by_key.items():
        by_label[label].append(key)
    result: dict[str, str] = {}
    for label in sorted(by_label):
        keys = sorted(by_label[label])
        random.Random(f"{seed}:{label}").shuffle(keys)
        have = existing.get(label, {})
        n_test, n_val = split_sizes(len(keys) + sum(have.values()), ratios)
        want_test = max(0, n_test - have.get("test", 0))
        want_val = max(0, n_val - have.get("validation", 0))
        for i, key in enumerate(keys):
            if i < want_test:
                result[key] = "test"
            elif i < want_test + want_val:
                result[key] = "validation"
            else:
                result[key] = "train"
    return result
