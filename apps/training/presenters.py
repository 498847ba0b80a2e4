"""What the evaluation and leaderboard pages show, computed from stored evaluations.

Stored evaluations are JSON written by apps.training.services (workers.ml.metrics plus the
split, item ids, row numbers). Versions stored before a field existed lack it, so every
reader here falls back instead of failing: weighted averages are recomputed from the per-class
rows, mistakes without an item (or whose item was deleted since) leave the gallery.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _

from apps.datasets.models import DatasetItem
from apps.training.models import ModelVersion
from apps.training.templates import TABULAR_REGRESSION

#: the heat map's colour steps: a cell's share of its row, rounded up to tenths
HEAT_STEPS = 10

#: the predicted-against-actual chart's size and margins, in SVG units
SCATTER_WIDTH = 560
SCATTER_HEIGHT = 420
SCATTER_MARGIN = {"left": 72, "right": 18, "top": 14, "bottom": 52}


def evaluation_context(model_version: ModelVersion) -> dict[str, Any]:
    """Template context for templates/training/_evaluation.html.

    Reads dataset items (the mistakes' thumbnails), so it runs in the organization's scope.
    """
    evaluation = model_version.evaluation or {}
    context: dict[str, Any] = {
        "evaluation": evaluation,
        "evaluation_split": evaluation.get("split") or "test",
    }
    if model_version.task == TABULAR_REGRESSION:
        context["regression"] = regression_summary(evaluation)
        return context
    labels = list(evaluation.get("labels", []))
    confusion = list(evaluation.get("confusion", []))
    mistakes, without_image = mistake_gallery(evaluation.get("mistakes") or [])
    context |= {
        "classification": True,
        "accuracy_text": _percent(float(evaluation.get("accuracy") or 0.0)),
        "confusion_rows": list(zip(labels, confusion, strict=True)),
        "averages": averages(evaluation),
        "heatmap": heatmap(labels, confusion),
        "mistakes": mistakes,
        "mistakes_without_image": without_image,
        "mistakes_recorded": "mistakes" in evaluation,
    }
    return context


# --- classification --------------------------------------------------------------------------


def weighted_averages(evaluation: dict[str, Any]) -> dict[str, float]:
    """Support-weighted precision, recall and F1: stored, or recomputed from the per-class rows
    for evaluations stored before they were."""
    stored = {k: evaluation.get(f"weighted_{k}") for k in ("precision", "recall", "f1")}
    if all(v is not None for v in stored.values()):
        return {k: float(v) for k, v in stored.items()}  # type: ignore[arg-type]
    rows = evaluation.get("per_class") or []
    total = sum(int(r.get("support", 0)) for r in rows)
    if total <= 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    return {
        k: sum(float(r.get(k, 0.0)) * int(r.get("support", 0)) for r in rows) / total
        for k in ("precision", "recall", "f1")
    }


def averages(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the headline table: precision, recall and F1, macro and weighted."""
    weighted = weighted_averages(evaluation)
    names = {"precision": _("Precision"), "recall": _("Recall"), "f1": _("F1")}
    return [
        {
            "key": key,
            "name": name,
            "macro": float(evaluation.get(f"macro_{key}") or 0.0),
            "weighted": weighted[key],
        }
        for key, name in names.items()
    ]


def _percent(share: float) -> str:
    return f"{formats.number_format(round(share * 100, 1), 1)} %"


def heatmap(labels: list[str], confusion: list[list[int]]) -> dict[str, Any]:
    """The confusion matrix as heat-map rows (true class) of cells (predicted class).

    Each cell's colour step is its share of the row, so a rare class's mistakes show as
    clearly as a common one's; diagonal cells (right answers) and the others use different
    colour scales. The hover title says the count and the share in words.
    """
    rows = []
    for i, (true_label, counts) in enumerate(zip(labels, confusion, strict=True)):
        total = sum(counts)
        cells = []
        for j, (predicted_label, count) in enumerate(zip(labels, counts, strict=True)):
            share = count / total if total else 0.0
            step = math.ceil(share * HEAT_STEPS) if count else 0
            correct = i == j
            if correct:
                title = _("%(true)s recognised correctly: %(count)s of %(total)s (%(share)s)") % {
                    "true": true_label,
                    "count": count,
                    "total": total,
                    "share": _percent(share),
                }
            else:
                title = _(
                    "%(true)s taken for %(predicted)s: %(count)s of %(total)s (%(share)s)"
                ) % {
                    "true": true_label,
                    "predicted": predicted_label,
                    "count": count,
                    "total": total,
                    "share": _percent(share),
                }
            cells.append(
                {
                    "count": count,
                    "share": share,
                    "predicted": predicted_label,
                    "correct": correct,
                    "css": f"{'d' if correct else 'o'}{step}",
                    "title": title,
                }
            )
        rows.append({"label": true_label, "total": total, "cells": cells})
    predicted_totals = [sum(column) for column in zip(*confusion, strict=True)] if confusion else []
    return {"labels": labels, "rows": rows, "predicted_totals": predicted_totals}


def mistake_gallery(mistakes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The stored mistakes whose image still exists, most confidently wrong first, with links
    to their thumbnail and full image; and how many were left out (no item recorded, or the
    item is gone)."""
    wanted: list[tuple[dict[str, Any], str]] = []
    for mistake in mistakes:
        try:
            wanted.append((mistake, str(uuid.UUID(str(mistake.get("item"))))))
        except ValueError:
            continue
    names = dict(
        DatasetItem.objects.filter(pk__in=[pk for _m, pk in wanted]).values_list(
            "pk", "original_name"
        )
    )
    names = {str(pk): name for pk, name in names.items()}
    gallery = [
        {
            "item": pk,
            "thumbnail_url": reverse("datasets:item_thumbnail", args=[pk]),
            "image_url": reverse("datasets:item_image", args=[pk]),
            "name": names[pk],
            "true": mistake.get("true", ""),
            "predicted": mistake.get("predicted", ""),
            "confidence": float(mistake.get("confidence") or 0.0),
        }
        for mistake, pk in wanted
        if pk in names
    ]
    return gallery, len(mistakes) - len(gallery)


# --- regression ------------------------------------------------------------------------------


def _nice_step(span: float, intervals: int) -> float:
    raw = span / max(1, intervals)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _decimals(step: float) -> int:
    """Decimal places that tell ticks `step` apart (0 for whole steps)."""
    for places in range(0, 10):
        if abs(round(step, places) - step) < step * 1e-9:
            return places
    return 9


def format_number(value: float | None, digits: int = 4) -> str:
    """`value` with about `digits` significant digits, localized and grouped: "1,234.5"."""
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    places = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    fraction = f"{round(value, places):.{places}f}".rstrip("0").partition(".")[2]
    return _number(value, len(fraction))


def _number(value: float, places: int) -> str:
    # number_format cuts digits off instead of rounding them: round first.
    return formats.number_format(round(value, places), places, force_grouping=True)


def scatter(pairs: list[dict[str, Any]], target: str = "") -> dict[str, Any] | None:
    """An SVG chart of predicted against actual values on one scale, with the y = x diagonal.

    Coordinates are strings already (so localization never puts a comma into the SVG).
    """
    points = [
        (float(p["actual"]), float(p["predicted"]), p)
        for p in pairs
        if p.get("actual") is not None and p.get("predicted") is not None
    ]
    if not points:
        return None
    low, high, step = _scatter_scale([v for a, p, _pair in points for v in (a, p)])
    m = SCATTER_MARGIN
    plot_w = SCATTER_WIDTH - m["left"] - m["right"]
    plot_h = SCATTER_HEIGHT - m["top"] - m["bottom"]

    def x(v: float) -> float:
        return m["left"] + (v - low) / (high - low) * plot_w

    def y(v: float) -> float:
        return m["top"] + plot_h - (v - low) / (high - low) * plot_h

    def c(v: float) -> str:
        return f"{v:.1f}"

    places = _decimals(step)
    ticks = []
    n = round((high - low) / step)
    for k in range(n + 1):
        value = low + k * step
        ticks.append(
            {
                "x": c(x(value)),
                "y": c(y(value)),
                "label": _number(value, places),
            }
        )
    dots = [
        {
            "cx": c(x(actual)),
            "cy": c(y(predicted)),
            "title": _scatter_title(actual, predicted, pair),
            "over": predicted > actual,
        }
        for actual, predicted, pair in points
    ]
    return {
        "width": SCATTER_WIDTH,
        "height": SCATTER_HEIGHT,
        "left": m["left"],
        "top": m["top"],
        "right": SCATTER_WIDTH - m["right"],
        "bottom": SCATTER_HEIGHT - m["bottom"],
        "plot_width": plot_w,
        "plot_height": plot_h,
        "center_x": c(m["left"] + plot_w / 2),
        "center_y": c(m["top"] + plot_h / 2),
        "diagonal": {"x1": c(x(low)), "y1": c(y(low)), "x2": c(x(high)), "y2": c(y(high))},
        "ticks": ticks,
        "points": dots,
        "target": target,
    }


def _scatter_scale(values: list[float]) -> tuple[float, float, float]:
    """(low, high, step) of one axis holding `values`, on round numbers."""
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 1, high + 1
    step = _nice_step(high - low, 5)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _scatter_title(actual: float, predicted: float, pair: dict[str, Any]) -> str:
    """A point's tooltip: which row (and name), actual and predicted values."""
    numbers = {"actual": format_number(actual), "predicted": format_number(predicted)}
    title = _("actual %(actual)s, predicted %(predicted)s") % numbers
    row, name = pair.get("row"), pair.get("name") or ""
    where = _("row %(row)s") % {"row": row} if row is not None else ""
    if name:
        where = f"{where} ({name})" if where else str(name)
    return f"{where}: {title}" if where else title


def regression_summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers (formatted) and the chart of a regression evaluation."""
    target = str(evaluation.get("target") or "")
    r2 = evaluation.get("r2")
    pairs = evaluation.get("pairs") or []
    return {
        "target": target,
        "mae": evaluation.get("mae"),
        "rmse": evaluation.get("rmse"),
        "r2": r2,
        "mae_text": format_number(evaluation.get("mae")),
        "rmse_text": format_number(evaluation.get("rmse")),
        "r2_text": "—" if r2 is None else formats.number_format(round(r2, 3), 3),
        "r2_percent": None if r2 is None else round(max(0.0, float(r2)) * 100),
        "count": evaluation.get("count"),
        "skipped_rows": evaluation.get("skipped_rows") or 0,
        "shown": len(pairs),
        "chart": scatter(pairs, target),
        "largest_misses": largest_misses(pairs),
    }


def largest_misses(pairs: list[dict[str, Any]], limit: int = 8) -> list[dict[str, Any]]:
    """The rows predicted worst, largest error first: where to look in the table."""
    scored = [
        (abs(float(p["predicted"]) - float(p["actual"])), p)
        for p in pairs
        if p.get("actual") is not None and p.get("predicted") is not None
    ]
    scored.sort(key=lambda item: -item[0])
    return [
        {
            "row": p.get("row"),
            "name": p.get("name") or "",
            "actual": format_number(float(p["actual"])),
            "predicted": format_number(float(p["predicted"])),
            "error": ("+" if float(p["predicted"]) > float(p["actual"]) else "")
            + format_number(float(p["predicted"]) - float(p["actual"])),
            "over": float(p["predicted"]) > float(p["actual"]),
        }
        for _error, p in scored[:limit]
    ]


# --- leaderboard -----------------------------------------------------------------------------


def duration_text(seconds: float | None) -> str:
    """ "42 s", "3 min 5 s", "2 h 14 min": how long a run took, for people."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        places = 1 if seconds < 10 else 0
        return _("%(s)s s") % {"s": formats.number_format(round(seconds, places), places)}
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return _("%(m)s min %(s)s s") % {"m": minutes, "s": secs}
    hours, minutes = divmod(minutes, 60)
    return _("%(h)s h %(m)s min") % {"h": hours, "m": minutes}


def leaderboard_context(board: dict[str, Any]) -> dict[str, Any]:
    """Template context for templates/training/leaderboard.html from
    apps.training.selectors.dataset_leaderboard: its rows with their numbers formatted."""
    regression = board["metric"] == "r2"
    entries = []
    for entry in board["entries"]:
        score = entry["score"]
        entries.append(
            entry
            | {
                "best": entry["rank"] == 1 and score is not None,
                "score_text": (
                    "—"
                    if score is None
                    else formats.number_format(round(score, 3), 3)
                    if regression
                    else _percent(score)
                ),
                "bar": 0 if score is None else round(100 * min(1.0, max(0.0, score))),
                "mae_text": format_number(entry.get("mae")),
                "rmse_text": format_number(entry.get("rmse")),
                "time_text": duration_text(entry["seconds"]),
            }
        )
    return {"metric": board["metric"], "regression": regression, "entries": entries}
