"""Classification and regression metrics (numpy only, no torch), stored as JSON by the portal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "MAX_MISTAKES",
    "MAX_PAIRS",
    "ClassMetrics",
    "Evaluation",
    "RegressionEvaluation",
    "evaluate_classification",
    "evaluate_regression",
]

#: how many of the worst mistakes an evaluation keeps (the gallery on the evaluation page)
MAX_MISTAKES = 24
#: how many (actual, predicted) pairs a regression evaluation keeps for its chart
MAX_PAIRS = 1000


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class; ``support`` is its number of true samples."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """Scores of a classifier on one data split.

    ``confusion[i][j]`` counts samples whose true label is ``labels[i]`` and predicted label is
    ``labels[j]``. Macro averages are taken over the classes that occur in the truth or in the
    predictions (as scikit-learn does when it is not given a label list), so a class missing
    from a small test split does not drag the averages down with a meaningless zero. Weighted
    averages weight each class by its support (scikit-learn's "weighted").

    ``mistakes`` lists up to :data:`MAX_MISTAKES` misclassified samples, most confidently wrong
    first: ``{"index": position in the evaluated sequence, "true": label, "predicted": label,
    "confidence": probability the model gave the predicted label}``. It is empty when no
    confidences were given.
    """

    labels: list[str]
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]
    count: int
    weighted_precision: float = 0.0
    weighted_recall: float = 0.0
    weighted_f1: float = 0.0
    mistakes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-serialisable data (``per_class`` as a list of dicts)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        """Rebuild an evaluation from :meth:`to_dict` output.

        Data stored before the weighted averages existed gets them recomputed from
        ``per_class``; data without ``mistakes`` gets an empty list.

        Raises:
            ValueError: if ``data`` does not have the expected shape.
        """
        try:
            per_class = [
                ClassMetrics(
                    label=str(item["label"]),
                    precision=float(item["precision"]),
                    recall=float(item["recall"]),
                    f1=float(item["f1"]),
                    support=int(item["support"]),
                )
                for item in data["per_class"]
            ]
            weighted = _weighted(
                np.array([m.precision for m in per_class], dtype=np.float64),
                np.array([m.recall for m in per_class], dtype=np.float64),
                np.array([m.f1 for m in per_class], dtype=np.float64),
                np.array([m.support for m in per_class], dtype=np.float64),
            )
            return cls(
                labels=[str(label) for label in data["labels"]],
                accuracy=float(data["accuracy"]),
                macro_precision=float(data["macro_precision"]),
                macro_recall=float(data["macro_recall"]),
                macro_f1=float(data["macro_f1"]),
                per_class=per_class,
                confusion=[[int(v) for v in row] for row in data["confusion"]],
                count=int(data["count"]),
                weighted_precision=float(data.get("weighted_precision", weighted[0])),
                weighted_recall=float(data.get("weighted_recall", weighted[1])),
                weighted_f1=float(data.get("weighted_f1", weighted[2])),
                mistakes=[
                    {
                        "index": int(item["index"]),
                        "true": str(item["true"]),
                        "predicted": str(item["predicted"]),
                        "confidence": float(item["confidence"]),
                    }
                    for item in data.get("mistakes", [])
                ],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a serialised Evaluation: {exc!r}") from exc


def evaluate_classification(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    labels: Sequence[str],
    *,
    confidences: Sequence[float] | None = None,
    max_mistakes: int = MAX_MISTAKES,
) -> Evaluation:
    """Score predicted label indices against true ones.

    Divisions by zero (a class never predicted, or never present) count as 0.0.
    ``confidences`` (the probability the model gave each prediction, in ``y_pred`` order)
    enables ``Evaluation.mistakes``: the ``max_mistakes`` wrong predictions with the highest
    confidence, ties broken by position.

    Raises:
        ValueError: on empty input, length mismatch, no labels, or an index outside ``labels``.
    """
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    n_labels = len(labels)
    _check_label_indices(true, pred, n_labels)
    confusion = np.bincount(true * n_labels + pred, minlength=n_labels * n_labels).reshape(
        n_labels, n_labels
    )
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    support = confusion.sum(axis=1)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support.astype(np.float64))
    f1 = _safe_divide(2.0 * precision * recall, precision + recall)

    present = (support > 0) | (predicted > 0)
    weighted = _weighted(precision, recall, f1, support.astype(np.float64))
    mistakes = (
        [] if confidences is None else _mistakes(true, pred, confidences, labels, max_mistakes)
    )
    return Evaluation(
        labels=[str(label) for label in labels],
        accuracy=float(tp.sum() / true.size),
        macro_precision=float(precision[present].mean()),
        macro_recall=float(recall[present].mean()),
        macro_f1=float(f1[present].mean()),
        per_class=_per_class(labels, precision, recall, f1, support),
        confusion=confusion.astype(int).tolist(),
        count=int(true.size),
        weighted_precision=weighted[0],
        weighted_recall=weighted[1],
        weighted_f1=weighted[2],
        mistakes=mistakes,
    )


def _check_label_indices(true: np.ndarray, pred: np.ndarray, n_labels: int) -> None:
    if true.size == 0:
        raise ValueError("cannot evaluate an empty set of predictions")
    if true.size != pred.size:
        raise ValueError(f"y_true has {true.size} items but y_pred has {pred.size}")
    if n_labels == 0:
        raise ValueError("labels must not be empty")
    for name, values in (("y_true", true), ("y_pred", pred)):
        if values.min() < 0 or values.max() >= n_labels:
            raise ValueError(f"{name} contains a label index outside 0..{n_labels - 1}")


def _per_class(
    labels: Sequence[str],
    precision: np.ndarray,
    recall: np.ndarray,
    f1: np.ndarray,
    support: np.ndarray,
) -> list[ClassMetrics]:
    return [
        ClassMetrics(
            label=str(labels[i]),
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
            support=int(support[i]),
        )
        for i in range(len(labels))
    ]


def _weighted(
    precision: np.ndarray, recall: np.ndarray, f1: np.ndarray, support: np.ndarray
) -> tuple[float, float, float]:
    total = support.sum()
    if total <= 0:
        return 0.0, 0.0, 0.0
    p, r, f = (float((values * support).sum() / total) for values in (precision, recall, f1))
    return p, r, f


def _mistakes(
    true: np.ndarray,
    pred: np.ndarray,
    confidences: Sequence[float],
    labels: Sequence[str],
    limit: int,
) -> list[dict[str, Any]]:
    confidence = np.asarray(confidences, dtype=np.float64).reshape(-1)
    if confidence.size != true.size:
        raise ValueError(f"y_true has {true.size} items but confidences has {confidence.size}")
    wrong = np.flatnonzero(true != pred)
    # Most confident first; a stable sort keeps equal confidences in position order.
    ranked = wrong[np.argsort(-confidence[wrong], kind="stable")][: max(0, limit)]
    return [
        {
            "index": int(i),
            "true": str(labels[true[i]]),
            "predicted": str(labels[pred[i]]),
            "confidence": float(confidence[i]),
        }
        for i in ranked
    ]


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


@dataclass(frozen=True)
class RegressionEvaluation:
    """Scores of a regression model on one data split, in the target's own units.

    ``r2`` is the coefficient of determination (1 is perfect, 0 is no better than always
    predicting the mean, negative is worse). ``pairs`` holds up to :data:`MAX_PAIRS`
    ``{"index", "actual", "predicted"}`` dicts for a predicted-against-actual chart, evenly
    spread over the split when it is larger; ``index`` is the row's index in the data the
    caller passed (``TabularData`` row order for :func:`workers.ml.tabular.train_regressor`).
    """

    mae: float
    rmse: float
    r2: float
    count: int
    pairs: list[dict[str, Any]] = field(default_factory=list)
    target: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-serialisable data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegressionEvaluation:
        """Rebuild an evaluation from :meth:`to_dict` output.

        Raises:
            ValueError: if ``data`` does not have the expected shape.
        """
        try:
            return cls(
                mae=float(data["mae"]),
                rmse=float(data["rmse"]),
                r2=float(data["r2"]),
                count=int(data["count"]),
                pairs=[
                    {
                        "index": int(item["index"]),
                        "actual": float(item["actual"]),
                        "predicted": float(item["predicted"]),
                    }
                    for item in data.get("pairs", [])
                ],
                target=str(data.get("target", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a serialised RegressionEvaluation: {exc!r}") from exc


def evaluate_regression(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    indices: ArrayLike | None = None,
    target: str = "",
    max_pairs: int = MAX_PAIRS,
) -> RegressionEvaluation:
    """Score predicted values against true ones.

    ``indices`` (default 0..n-1) label the rows in ``pairs``. R² of a constant truth is 1.0
    when every prediction is exact and 0.0 otherwise.

    Raises:
        ValueError: on empty input, a length mismatch or a value that is not finite.
    """
    true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if true.size == 0:
        raise ValueError("cannot evaluate an empty set of predictions")
    if true.size != pred.size:
        raise ValueError(f"y_true has {true.size} items but y_pred has {pred.size}")
    if not (np.isfinite(true).all() and np.isfinite(pred).all()):
        raise ValueError("values must be finite numbers")
    rows = np.arange(true.size) if indices is None else np.asarray(indices, dtype=np.int64)
    if rows.size != true.size:
        raise ValueError(f"y_true has {true.size} items but indices has {rows.size}")
    error = pred - true
    ss_res = float((error**2).sum())
    ss_tot = float(((true - true.mean()) ** 2).sum())
    if ss_tot > 0:
        r2 = 1.0 - ss_res / ss_tot
    else:
        r2 = 1.0 if ss_res == 0 else 0.0
    if true.size > max_pairs:
        keep = np.unique(np.linspace(0, true.size - 1, max(1, max_pairs)).round().astype(np.int64))
    else:
        keep = np.arange(true.size)
    return RegressionEvaluation(
        mae=float(np.abs(error).mean()),
        rmse=float(np.sqrt(ss_res / true.size)),
        r2=float(r2),
        count=int(true.size),
        pairs=[
            {"index": int(rows[i]), "actual": float(true[i]), "predicted": float(pred[i])}
            for i in keep
        ],
        target=target,
    )
