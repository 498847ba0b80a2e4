"""Classification metrics against hand-computed values."""

from __future__ import annotations

import json

import pytest

from workers.ml.metrics import ClassMetrics, Evaluation, evaluate_classification

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
