"""Training regressors: what they learn, progress, determinism and resume, and real data."""

from __future__ import annotations

import csv
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.workers.ml.tabular.tables import SPLIT_CYCLE, curved_market, train_cpu
from workers.ml.checkpoint import load_bundle
from workers.ml.loop import Progress, TrainingCancelled
from workers.ml.metrics import evaluate_regression
from workers.ml.tabular import (
    RegressionConfig,
    RegressionResult,
    TabularColumn,
    TabularData,
    TabularPredictor,
)


def test_linear_model_recovers_a_linear_relation(
    linear_run: tuple[RegressionResult, list[Progress]],
) -> None:
    result, _ = linear_run
    assert result.evaluation.r2 > 0.9
    assert result.evaluation_split == "test"
    assert result.evaluation.count == 60
    assert result.evaluation.target == "price"
    assert result.device == "cpu" and result.gpu_seconds == 0.0
    assert result.history[-1].train_accuracy is None
    assert result.history[-1].val_loss is not None and result.history[-1].val_loss < 0.1
    assert result.feature_names[:2] == ["size", "size (missing)"]


def test_progress_reports_rows(linear_run: tuple[RegressionResult, list[Progress]]) -> None:
    _, progress = linear_run
    assert [p.phase for p in progress[-2:]] == ["evaluate", "done"]
    train = [p for p in progress if p.phase == "train"]
    assert all(p.train_accuracy is None and p.val_accuracy is None for p in train)
    assert train[-1].step == train[-1].total_steps
    assert all(p.images_per_second > 0 for p in train)


def test_mlp_fits_a_curve_a_line_cannot(tmp_path: Path) -> None:
    data = curved_market()
    linear = train_cpu(data, tmp_path / "l", RegressionConfig(template="linear", epochs=20))
    mlp = train_cpu(
        data,
        tmp_path / "m",
        RegressionConfig(template="mlp", epochs=40, learning_rate=0.01, hidden_size=32),
    )
    assert linear.evaluation.r2 < 0.6
    assert mlp.evaluation.r2 > 0.9
    assert load_bundle(mlp.bundle_path).metadata["hidden_size"] == 32


def test_same_seed_same_weights_and_resume_is_exact(tmp_path: Path) -> None:
    data = curved_market(n=120)
    config = RegressionConfig(template="mlp", epochs=6, hidden_size=16, early_stopping_patience=50)
    straight = train_cpu(data, tmp_path / "a", config)
    again = train_cpu(data, tmp_path / "b", config)
    checks = 0

    def stop_in_epoch_four() -> bool:
        nonlocal checks
        checks += 1
        return checks > 3 * 3 + 1  # 72 training rows, 32 per batch: 3 steps per epoch

    with pytest.raises(TrainingCancelled):
        train_cpu(data, tmp_path / "c", config, should_stop=stop_in_epoch_four)
    resumed = train_cpu(data, tmp_path / "c", config, resume=True)
    assert resumed.resumed_from_epoch == 3
    for other in (again, resumed):
        a, b = (
            load_bundle(straight.bundle_path).state_dict,
            load_bundle(other.bundle_path).state_dict,
        )
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert [(e.train_loss, e.val_loss) for e in other.history] == [
            (e.train_loss, e.val_loss) for e in straight.history
        ]


def test_rows_without_target_are_skipped_and_splits_fall_back(tmp_path: Path) -> None:
    data = TabularData(
        columns=[TabularColumn("x", "numeric", [1, 2, 3, 4, 5])],
        target=[1, 2, None, 4, ""],
        splits=["train"] * 5,
    )
    result = train_cpu(data, tmp_path, RegressionConfig(epochs=2))
    assert result.skipped_rows == 2
    assert result.evaluation_split == "train"
    assert sorted(p["index"] for p in result.evaluation.pairs) == [0, 1, 3]
    assert result.history[-1].val_loss is None


PLOTLY = importlib.util.find_spec("plotly")


@pytest.mark.skipif(PLOTLY is None, reason="plotly (which ships the tips data set) is absent")
def test_a_real_csv_shipped_in_a_package(tmp_path: Path) -> None:
    """Restaurant tips (plotly's copy of the classic seaborn data set): 244 bills."""
    assert PLOTLY is not None and PLOTLY.submodule_search_locations
    path = Path(PLOTLY.submodule_search_locations[0]) / "package_data" / "datasets" / "tips.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == 244
    for index, record in enumerate(records):
        record["__split"] = SPLIT_CYCLE[index % len(SPLIT_CYCLE)]
    data = TabularData.from_records(
        records,
        features={
            "total_bill": "numeric",
            "size": "numeric",
            "sex": "categorical",
            "smoker": "categorical",
            "day": "categorical",
            "time": "categorical",
        },
        target="tip",
    )
    result = train_cpu(data, tmp_path, RegressionConfig(template="linear"))

    # The best any linear model can do on this split, computed independently: least squares
    # on a hand-made encoding (raw numbers, one-hot categories, an intercept).
    train = [i for i, r in enumerate(records) if r["__split"] == "train"]
    test = [i for i, r in enumerate(records) if r["__split"] == "test"]
    levels = {c: sorted({r[c] for r in records}) for c in ("sex", "smoker", "day", "time")}
    design = np.array(
        [
            [float(r["total_bill"]), float(r["size"]), 1.0]
            + [float(r[c] == level) for c, values in levels.items() for level in values]
            for r in records
        ]
    )
    tips = np.array([float(r["tip"]) for r in records])
    weights, *_ = np.linalg.lstsq(design[train], tips[train], rcond=None)
    best = evaluate_regression(tips[test], design[test] @ weights)
    assert result.evaluation.count == len(test) == 48
    assert result.evaluation.r2 > best.r2 - 0.05
    assert result.evaluation.mae < best.mae + 0.05
    # ... and clearly better than always guessing the average tip.
    assert result.evaluation.mae < 0.92 * float(np.abs(tips[test] - tips[train].mean()).mean())
    predictor = TabularPredictor.load(result.bundle_path, device="cpu")
    small, large = (
        predictor.predict({"total_bill": bill, "size": 2, "sex": "Male", "day": "Sat"})
        for bill in (10, 40)
    )
    assert large > small + 2  # a bigger bill, a bigger tip
