"""Tabular regression: preprocessing, templates, training, resume, and serving rows."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from workers.ml.checkpoint import load_bundle
from workers.ml.loop import Progress, TrainingCancelled
from workers.ml.metrics import evaluate_regression
from workers.ml.predictor import Predictor, load_predictor
from workers.ml.tabular import (
    RegressionConfig,
    RegressionResult,
    TabularColumn,
    TabularData,
    TabularPredictor,
    TabularPreprocessor,
    train_regressor,
)

SPLIT_CYCLE = ("train", "train", "train", "validation", "test")


def _splits(n: int) -> list[str]:
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
        splits=_splits(n),
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
        splits=_splits(n),
        target_name="demand",
    )


def _train(
    data: TabularData, out: Path, config: RegressionConfig, **kwargs: object
) -> RegressionResult:
    return train_regressor(config=config, data=data, output_dir=out, device="cpu", **kwargs)  # type: ignore[arg-type]


# --- preprocessing ---------------------------------------------------------------------------


def test_preprocessor_fits_on_training_rows_only() -> None:
    data = TabularData(
        columns=[
            TabularColumn("n", "numeric", [1.0, 3.0, None, 100.0]),
            TabularColumn("c", "categorical", ["a", "b", None, "zzz"]),
        ],
        target=[1.0, 2.0, 3.0, 4.0],
        splits=["train", "train", "train", "test"],
    )
    prep = TabularPreprocessor.fit(data, [0, 1, 2])
    numeric, categorical = prep.columns
    assert (numeric.mean, numeric.std, numeric.missing_indicator) == (2.0, 1.0, True)
    assert categorical.categories == ("", "a", "b")  # "zzz" is only in the test row
    assert prep.feature_names == ["n", "n (missing)", "c=(missing)", "c=a", "c=b", "c=(other)"]
    assert (prep.target_mean, prep.target_std) == (2.0, pytest.approx(math.sqrt(2 / 3)))
    encoded = prep.transform(data, [0, 2, 3])
    assert encoded.tolist() == [
        [-1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        [0.0, 1.0, 1.0, 0.0, 0.0, 0.0],  # missing number: the mean, flagged
        [98.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # unseen category: "other"
    ]
    assert prep.transform_row({"n": "3", "c": "b", "extra": 1}).tolist() == [
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
    ]
    assert prep.transform_row({}).tolist() == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert TabularPreprocessor.from_dict(prep.to_dict()) == prep


def test_rare_categories_beyond_the_cap_share_other() -> None:
    values = ["a"] * 5 + ["b"] * 3 + ["c"]
    data = TabularData(
        columns=[TabularColumn("c", "categorical", values)],
        target=[0.0] * 9,
        splits=["train"] * 9,
    )
    prep = TabularPreprocessor.fit(data, list(range(9)), max_categories=2)
    assert prep.columns[0].categories == ("a", "b")
    assert prep.transform_row({"c": "c"}).tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": []}, "at least one feature column"),
        ({"splits": ["train", "holdout"]}, "data row 2 has split 'holdout'"),
        ({"target": [1.0]}, "column 'n' has 2 values for 1 rows"),
        (
            {"columns": [TabularColumn("n", "numeric", [1, 2])] * 2},
            "column 'n' appears twice",
        ),
        ({"columns": [TabularColumn("n", "text", [1, 2])]}, "kind 'text'"),
    ],
)
def test_malformed_tables_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "columns": [TabularColumn("n", "numeric", [1, 2])],
        "target": [1.0, 2.0],
        "splits": ["train", "test"],
    }
    with pytest.raises(ValueError, match=message):
        TabularData(**(base | kwargs))  # type: ignore[arg-type]


def test_bad_cells_are_named_by_column_and_row(tmp_path: Path) -> None:
    data = TabularData(
        columns=[TabularColumn("area", "numeric", ["1", "2", "lots"])],
        target=[1, 2, 3],
        splits=["train", "train", "train"],
    )
    with pytest.raises(ValueError, match="column 'area', data row 3: 'lots' is not a number"):
        _train(data, tmp_path, RegressionConfig(epochs=1))
    no_target = TabularData(
        columns=[TabularColumn("area", "numeric", [1, 2])],
        target=[None, "NA"],
        splits=["train", "test"],
    )
    with pytest.raises(ValueError, match="no training row has a value for the target"):
        _train(no_target, tmp_path, RegressionConfig(epochs=1))


# --- training --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RegressionResult, list[Progress]]:
    data = linear_market()
    progress: list[Progress] = []
    result = _train(
        data,
        tmp_path_factory.mktemp("linear"),
        RegressionConfig(template="linear", epochs=30, learning_rate=0.05),
        on_progress=progress.append,
    )
    return result, progress


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


def test_predictor_serves_rows_like_the_evaluation(
    linear_run: tuple[RegressionResult, list[Progress]],
) -> None:
    result, _ = linear_run
    data = linear_market()
    predictor = TabularPredictor.load(result.bundle_path, device="cpu")
    assert predictor.target_name == "price"
    assert predictor.columns == [
        {"name": "size", "kind": "numeric"},
        {"name": "age", "kind": "numeric"},
        {"name": "region", "kind": "categorical"},
    ]
    rows = [{c.name: c.values[p["index"]] for c in data.columns} for p in result.evaluation.pairs]
    predicted = predictor.predict_rows(rows)
    for pair, value in zip(result.evaluation.pairs, predicted, strict=True):
        assert value == pytest.approx(pair["predicted"], rel=1e-5)
        assert pair["actual"] == data.target[pair["index"]]
    # Recomputed from the predictions alone, the scores agree.
    again = evaluate_regression([p["actual"] for p in result.evaluation.pairs], predicted)
    assert again.r2 == pytest.approx(result.evaluation.r2, abs=1e-6)
    base = predictor.predict({"size": 5, "age": 2, "region": "north"})
    assert base == pytest.approx(3 * 5 - 2 * 2 + 5 + 20, abs=1.0)
    # Missing, unseen or absent values still give a price within what the market has seen.
    for row in ({"size": None, "age": 2, "region": "north"}, {"size": 5, "region": "mars"}, {}):
        assert min(data.target) <= predictor.predict(row) <= max(data.target)
    with pytest.raises(ValueError, match="column 'age'"):
        predictor.predict({"age": "old"})


def test_mlp_fits_a_curve_a_line_cannot(tmp_path: Path) -> None:
    data = curved_market()
    linear = _train(data, tmp_path / "l", RegressionConfig(template="linear", epochs=20))
    mlp = _train(
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
    straight = _train(data, tmp_path / "a", config)
    again = _train(data, tmp_path / "b", config)
    checks = 0

    def stop_in_epoch_four() -> bool:
        nonlocal checks
        checks += 1
        return checks > 3 * 3 + 1  # 72 training rows, 32 per batch: 3 steps per epoch

    with pytest.raises(TrainingCancelled):
        _train(data, tmp_path / "c", config, should_stop=stop_in_epoch_four)
    resumed = _train(data, tmp_path / "c", config, resume=True)
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
    result = _train(data, tmp_path, RegressionConfig(epochs=2))
    assert result.skipped_rows == 2
    assert result.evaluation_split == "train"
    assert sorted(p["index"] for p in result.evaluation.pairs) == [0, 1, 3]
    assert result.history[-1].val_loss is None


def test_bundles_are_told_apart(tmp_path: Path, random_bundle_path: Path) -> None:
    data = curved_market(n=30)
    result = _train(data, tmp_path, RegressionConfig(epochs=1))
    assert isinstance(load_predictor(result.bundle_path, device="cpu"), TabularPredictor)
    assert isinstance(load_predictor(random_bundle_path, device="cpu"), Predictor)
    with pytest.raises(ValueError, match="TabularPredictor"):
        Predictor.load(result.bundle_path, device="cpu")
    with pytest.raises(ValueError, match="Predictor"):
        TabularPredictor.load(random_bundle_path, device="cpu")


def test_config_validation_and_schema() -> None:
    with pytest.raises(ValueError, match="unknown regression template 'tree'"):
        RegressionConfig(template="tree")
    with pytest.raises(ValueError, match="hidden_size must be a whole number between 8 and 1024"):
        RegressionConfig(hidden_size=4)
    names = [k["name"] for k in RegressionConfig.schema("linear")]
    assert "hidden_size" not in names and "epochs" in names
    assert "hidden_size" in [k["name"] for k in RegressionConfig.schema("mlp")]


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
    result = _train(data, tmp_path, RegressionConfig(template="linear"))

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
