"""Serving a regression bundle: rows answer as in the evaluation; bundles are told apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.ml.tabular.tables import curved_market, linear_market, train_cpu
from workers.ml.loop import Progress
from workers.ml.metrics import evaluate_regression
from workers.ml.predictor import Predictor, load_predictor
from workers.ml.tabular import RegressionConfig, RegressionResult, TabularPredictor


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


def test_bundles_are_told_apart(tmp_path: Path, random_bundle_path: Path) -> None:
    data = curved_market(n=30)
    result = train_cpu(data, tmp_path, RegressionConfig(epochs=1))
    assert isinstance(load_predictor(result.bundle_path, device="cpu"), TabularPredictor)
    assert isinstance(load_predictor(random_bundle_path, device="cpu"), Predictor)
    with pytest.raises(ValueError, match="TabularPredictor"):
        Predictor.load(result.bundle_path, device="cpu")
    with pytest.raises(ValueError, match="Predictor"):
        TabularPredictor.load(random_bundle_path, device="cpu")
