"""Loss and accuracy per epoch as small SVG line charts for the run page.

Drawn on the server (no chart library): the page renders them on first paint, and its live
fragment (?fragment=live) brings a fresh copy when an epoch has ended.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext

WIDTH, HEIGHT = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 14, 12, 30
#: above this many epochs the points are too dense to mark; the lines stay
MAX_MARKED_EPOCHS = 60


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    epoch: int
    value: float
    text: str


@dataclass(frozen=True)
class Series:
    key: str  # "train" | "validation": the CSS class, shared with the legend
    label: str
    points: tuple[Point, ...]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    key: str  # "loss" | "accuracy"
    title: str
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    epochs: int
    marked: bool
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def x_label_y(self) -> int:
        return self.height - 6

    @property
    def center_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def center_y(self) -> float:
        return (self.top + self.bottom) / 2


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 (times a power of ten) >= value."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    scale = 10.0**exponent
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * scale * (1 + 1e-9):
            return step * scale
    return 10 * scale  # pragma: no cover - the loop always returns


def _short(value: float) -> str:
    return f"{value:.3g}"


def _percent(value: float) -> str:
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _x_ticks(span: int, x: Any) -> tuple[Tick, ...]:
    """Epoch 1 and round multiples (5, 10, 50, ...): six labels at most."""
    step = next(n * 10**e for e in range(0, 6) for n in (1, 2, 5) if span / (n * 10**e) <= 5)
    epochs = list(range(step, span + 1, step))
    if not epochs or epochs[0] - 1 >= step / 2:
        epochs.insert(0, 1)
    return tuple(Tick(at=x(e), label=str(e)) for e in epochs)


def run_charts(epochs: Sequence[Any], *, total_epochs: int, classification: bool) -> list[Chart]:
    """The loss chart, and for classifiers the accuracy chart, of a run's epoch metrics
    (objects or dicts with epoch, train_loss, val_loss, train_accuracy, val_accuracy)."""
    rows = [e if isinstance(e, dict) else vars(e) for e in epochs]
    rows.sort(key=lambda r: r["epoch"])
    span = max([total_epochs, 1, *(r["epoch"] for r in rows)])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(epoch: float) -> float:
        if span == 1:
            return LEFT + plot_w / 2
        return LEFT + (epoch - 1) / (span - 1) * plot_w

    x_ticks = _x_ticks(span, x)
    marked = len(rows) <= MAX_MARKED_EPOCHS
    labels = {"train": gettext("training"), "validation": gettext("validation")}
    charts = []
    kinds = [("loss", gettext("Loss"))]
    if classification:
        kinds.append(("accuracy", gettext("Accuracy")))
    for key, title in kinds:
        fields = {"train": f"train_{key}", "validation": f"val_{key}"}
        values = [r[f] for r in rows for f in fields.values() if r.get(f) is not None]
        finite = [v for v in values if math.isfinite(v)]
        top = 1.0 if key == "accuracy" else nice_ceiling(max(finite, default=1.0))
        fmt = _percent if key == "accuracy" else _short

        def y(value: float, top: float = top) -> float:
            clipped = min(max(value, 0.0), top)
            return TOP + plot_h - clipped / top * plot_h

        series = []
        for which, field in fields.items():
            points = tuple(
                Point(
                    x=x(r["epoch"]),
                    y=y(r[field]),
                    epoch=r["epoch"],
                    value=r[field],
                    text=gettext("Epoch %(epoch)s, %(series)s: %(value)s")
                    % {"epoch": r["epoch"], "series": labels[which], "value": fmt(r[field])},
                )
                for r in rows
                if r.get(field) is not None and math.isfinite(r[field])
            )
            series.append(Series(key=which, label=labels[which], points=points))
        y_ticks = tuple(Tick(at=y(top * i / 4), label=fmt(top * i / 4)) for i in range(5))
        charts.append(
            Chart(
                key=key,
                title=title,
                series=tuple(series),
                x_ticks=x_ticks,
                y_ticks=y_ticks,
                epochs=len(rows),
                marked=marked,
            )
        )
    return charts
