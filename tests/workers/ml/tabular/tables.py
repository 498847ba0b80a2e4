"""Generated tables for the regression tests, and a CPU training call."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workers.ml.tabular import (
    RegressionConfig,
    RegressionResult,
    TabularColumn,
    TabularData,
    train_regressor,
)

SPLIT_CYCLE = ("train", "train", "train", "validation", "test")


def splits(n: int) -> list[str]:
    return [SPLIT_CYCLE[i % len(SPLIT_CYCLE)] for i in range(n)]


def linear_market(n: int = 300, seed: int = 0) -> TabularData:
    """price = 3 * size - 2 * age + 5 [region = north] + noise, with some cells missing."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(0, 10, n)
    age = rng.uniform(0, 5, n)
    region = rng.choice(["north", "south", "east"], n)
    price = 3 * size - 2 * age + 5 * (region == "north") + rng.normal(0, 0.3, n) + 20
    sizes: list[object] = [f"{v:.4f}" for v in size]  # text cells, as a CSV gives them
    for i in range(0, n, 37):
        sizes[i] = ""  # missing
    return TabularData(
        columns=[
            TabularColumn("size", "numeric", sizes),
            TabularColumn("age", "numeric", list(age)),
            TabularColumn("region", "categorical", list(region)),
        ],
        target=list(price),
        splits=splits(n),
        target_name="price",
    )


def curved_market(n: int = 400, seed: int = 1) -> TabularData:
    """demand = 4 sin(2x) + x^2 + noise: no straight line fits it."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    y = 4 * np.sin(2 * x) + x**2 + rng.normal(0, 0.1, n)
    return TabularData(
        columns=[TabularColumn("x", "numeric", list(x))],
        target=list(y),
        splits=splits(n),
        target_name="demand",
    )


def train_cpu(
    data: TabularData, out: Path, config: RegressionConfig, **kwargs: object
) -> RegressionResult:
    return train_regressor(config=config, data=data, output_dir=out, device="cpu", **kwargs)  # type: ignore[arg-type]
