"""Classification and regression metrics against hand-computed values."""

from __future__ import annotations

import json
import math

import pytest

from workers.ml.metrics import (
    ClassMetrics,
    Evaluation,
    RegressionEvaluation,
    evaluate_classification,
    evaluate_regression,
)

LABELS = ["a", "b", "c"]


def test_hand_computed_three_classes() -> None:
    # Confusion (rows true, cols predicted):  a: [2, 1, 0]  b: [0, 3, 0]  c: [1, 0, 1]
    y_true = [0, 0, 0, 1, 1, 1, 2, 2]
    y_pred = [0, 0, 1, 1, 1, 1, 2, 0]
    result = evaluate_classification(y_true, y_pred, LABELS)

    assert result.confusion == [[2, 1, 0], [0, 3, 0], [1, 0, 1]]
    assert result.count == 8
    assert result.accuracy == pytest.approx(6 / 8)
    precision = {"a": 2 / 3, "b": 3 / 4, "c": 1.0}
    recall = {"a": 2 / 3, "b": 1.0, "c": 1 / 2}
    f1 = {"a": 2 / 3, "b": 6 / 7, "c": 2 / 3}
    support = {"a": 3, "b": 3, "c": 2}
    for metrics in result.per_class:
        assert metrics.precision == pytest.approx(precision[metrics.label])
        assert metrics.recall == pytest.approx(recall[metrics.label])
        assert metrics.f1 == pytest.approx(f1[metrics.label])
        assert metrics.support == support[metrics.label]
    assert result.macro_precision == pytest.approx(sum(precision.values()) / 3)
    assert result.macro_recall == pytest.approx(sum(recall.values()) / 3)
    assert result.macro_f1 == pytest.approx(sum(f1.values()) / 3)
    assert [m.label for m in result.per_class] == LABELS
    assert result.labels == LABELS


def test_perfect_predictions() -> None:
    y = [0, 1, 2, 2, 1, 0]
    result = evaluate_classification(y, y, LABELS)
    assert result.accuracy == 1.0
    assert result.macro_precision == result.macro_recall == result.macro_f1 == 1.0
    assert result.confusion == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_class_never_predicted_scores_zero_without_error() -> None:
    result = evaluate_classification([0, 1, 2], [0, 0, 1], LABELS)
    by_label = {m.label: m for m in result.per_class}
    assert by_label["c"] == ClassMetrics("c", 0.0, 0.0, 0.0, 1)
    assert by_label["b"].precision == 0.0  # predicted once, wrongly
    assert by_label["a"].precision == pytest.approx(0.5)
    assert by_label["a"].recall == 1.0
    assert result.accuracy == pytest.approx(1 / 3)


def test_absent_class_does_not_enter_macro_average() -> None:
    result = evaluate_classification([0, 1], [0, 1], ["a", "b", "unused"])
    assert result.macro_f1 == 1.0
    assert result.per_class[2] == ClassMetrics("unused", 0.0, 0.0, 0.0, 0)
    assert result.confusion[2] == [0, 0, 0]


@pytest.mark.parametrize(
    ("y_true", "y_pred", "labels"),
    [
        ([], [], LABELS),
        ([0, 1], [0], LABELS),
        ([0], [3], LABELS),
        ([-1], [0], LABELS),
        ([0], [0], []),
    ],
    ids=["empty", "length-mismatch", "pred-out-of-range", "negative", "no-labels"],
)
def test_invalid_input_raises(y_true: list[int], y_pred: list[int], labels: list[str]) -> None:
    with pytest.raises(ValueError):
        evaluate_classification(y_true, y_pred, labels)


def test_dict_round_trip_through_json() -> None:
    result = evaluate_classification([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], LABELS)
    data = json.loads(json.dumps(result.to_dict()))
    assert isinstance(data["per_class"], list)
    assert isinstance(data["per_class"][0], dict)
    assert Evaluation.from_dict(data) == result


def test_from_dict_rejects_foreign_data() -> None:
    with pytest.raises(ValueError):
        Evaluation.from_dict({"accuracy": 1.0})


def test_weighted_averages_weight_classes_by_support() -> None:
    # Same data as the hand-computed case: supports a=3, b=3, c=2.
    y_true = [0, 0, 0, 1, 1, 1, 2, 2]
    y_pred = [0, 0, 1, 1, 1, 1, 2, 0]
    result = evaluate_classification(y_true, y_pred, LABELS)
    assert result.weighted_precision == pytest.approx((3 * 2 / 3 + 3 * 3 / 4 + 2 * 1.0) / 8)
    assert result.weighted_recall == pytest.approx((3 * 2 / 3 + 3 * 1.0 + 2 * 0.5) / 8)
    assert result.weighted_f1 == pytest.approx((3 * 2 / 3 + 3 * 6 / 7 + 2 * 2 / 3) / 8)
    # Weighted recall is accuracy by definition.
    assert result.weighted_recall == pytest.approx(result.accuracy)


def test_mistakes_are_the_most_confident_wrong_predictions() -> None:
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 0, 0, 2]
    confidences = [0.99, 0.6, 0.7, 0.9, 0.6, 0.8]
    result = evaluate_classification(y_true, y_pred, LABELS, confidences=confidences)
    assert result.mistakes == [
        {"index": 3, "true": "b", "predicted": "a", "confidence": 0.9},
        # Equal confidence: the earlier position first.
        {"index": 1, "true": "a", "predicted": "b", "confidence": 0.6},
        {"index": 4, "true": "c", "predicted": "a", "confidence": 0.6},
    ]
    limited = evaluate_classification(
        y_true, y_pred, LABELS, confidences=confidences, max_mistakes=1
    )
    assert [m["index"] for m in limited.mistakes] == [3]
    assert evaluate_classification(y_true, y_pred, LABELS).mistakes == []
    with pytest.raises(ValueError, match="confidences"):
        evaluate_classification(y_true, y_pred, LABELS, confidences=[0.5])


def test_mistakes_and_weighted_survive_json() -> None:
    result = evaluate_classification([0, 1, 2, 2], [1, 1, 2, 0], LABELS, confidences=[0.7] * 4)
    data = json.loads(json.dumps(result.to_dict()))
    assert Evaluation.from_dict(data) == result


def test_from_dict_of_data_stored_before_weighted_and_mistakes() -> None:
    result = evaluate_classification([0, 0, 0, 1, 2, 2], [0, 1, 1, 1, 2, 0], LABELS)
    old = result.to_dict()
    for key in ("weighted_precision", "weighted_recall", "weighted_f1", "mistakes"):
        del old[key]
    restored = Evaluation.from_dict(old)
    assert restored.mistakes == []
    assert restored.weighted_f1 == pytest.approx(result.weighted_f1)
    assert restored.weighted_precision == pytest.approx(result.weighted_precision)


def test_regression_metrics_hand_computed() -> None:
    truth = [1.0, 2.0, 3.0, 4.0]
    predicted = [1.5, 2.0, 2.0, 4.5]
    result = evaluate_regression(truth, predicted, indices=[10, 11, 12, 13], target="price")
    assert result.mae == pytest.approx((0.5 + 0 + 1 + 0.5) / 4)
    assert result.rmse == pytest.approx(math.sqrt((0.25 + 0 + 1 + 0.25) / 4))
    # ss_res = 1.5, ss_tot = 5
    assert result.r2 == pytest.approx(1 - 1.5 / 5)
    assert result.count == 4
    assert result.target == "price"
    assert result.pairs[2] == {"index": 12, "actual": 3.0, "predicted": 2.0}
    assert RegressionEvaluation.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_regression_r2_of_constant_truth_and_pair_cap() -> None:
    assert evaluate_regression([2.0, 2.0], [2.0, 2.0]).r2 == 1.0
    assert evaluate_regression([2.0, 2.0], [1.0, 3.0]).r2 == 0.0
    many = evaluate_regression(list(range(50)), list(range(50)), max_pairs=5)
    assert [p["index"] for p in many.pairs] == [0, 12, 24, 37, 49]
    assert many.count == 50


@pytest.mark.parametrize(
    ("y_true", "y_pred"),
    [([], []), ([1.0], [1.0, 2.0]), ([float("nan")], [1.0])],
    ids=["empty", "length-mismatch", "nan"],
)
def test_regression_invalid_input_raises(y_true: list[float], y_pred: list[float]) -> None:
    with pytest.raises(ValueError):
        evaluate_regression(y_true, y_pred)
