"""One trained linear model, shared by the training and serving tests of this package."""

from __future__ import annotations

import pytest

from tests.workers.ml.tabular.tables import linear_market, train_cpu
from workers.ml.loop import Progress
from workers.ml.tabular import RegressionConfig, RegressionResult


@pytest.fixture(scope="package")
def linear_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RegressionResult, list[Progress]]:
    data = linear_market()
    progress: list[Progress] = []
    result = train_cpu(
        data,
        tmp_path_factory.mktemp("linear"),
        RegressionConfig(template="linear", epochs=30, learning_rate=0.05),
        on_progress=progress.append,
    )
    return result, progress
