"""Classification metrics (numpy only, no torch), stored as JSON by the portal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["ClassMetrics", "Evaluation", "evaluate_classification"]


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
    from a small test split does not drag the averages down with a meaningless zero.
    """

    labels: list[str]
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]
    count: int

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-serialisable data (``per_class`` as a list of dicts)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        """Rebuild an evaluation from :meth:`to_dict` output.

        Raises:
            ValueError: if ``data`` does not have the expected shape.
        """
        try:
            return cls(
                labels=[str(label) for label in data["labels"]],
                accuracy=float(data["accuracy"]),
                macro_precision=float(data["macro_precision"]),
                macro_recall=float(data["macro_recall"]),
                macro_f1=float(data["macro_f1"]),
                per_class=[
                    ClassMetrics(
                        label=str(item["label"]),
                        precision=float(item["precision"]),
                        recall=float(item["recall"]),
                        f1=float(item["f1"]),
                        support=int(item["support"]),
                    )
                    for item in data["per_class"]
                ],
                confusion=[[int(v) for v in row] for row in data["confusion"]],
                count=int(data["count"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a serialised Evaluation: {exc!r}") from exc


def evaluate_classification(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> Evaluation:
    """Score predicted label indices against true ones.

    Divisions by zero (a class never predicted, or never present) count as 0.0.

    Raises:
        ValueError: on empty input, length mismatch, no labels, or an index outside ``labels``.
    """
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    n_labels = len(labels)
    if true.size == 0:
        raise ValueError("cannot evaluate an empty set of predictions")
    if true.size != pred.size:
        raise ValueError(f"y_true has {true.size} items but y_pred has {pred.size}")
    if n_labels == 0:
        raise ValueError("labels must not be empty")
    for name, values in (("y_true", true), ("y_pred", pred)):
        if values.min() < 0 or values.max() >= n_labels:
            raise ValueError(f"{name} contains a label index outside 0..{n_labels - 1}")

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
    per_class = [
        ClassMetrics(
            label=str(labels[i]),
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
            support=int(support[i]),
        )
        for i in range(n_labels)
    ]
    return Evaluation(
        labels=[str(label) for label in labels],
        accuracy=float(tp.sum() / true.size),
        macro_precision=float(precision[present].mean()),
        macro_recall=float(recall[present].mean()),
        macro_f1=float(f1[present].mean()),
        per_class=per_class,
        confusion=confusion.astype(int).tolist(),
        count=int(true.size),
    )


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out
