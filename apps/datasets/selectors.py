"""Reads for dataset pages and the API: the health report as shown, its charts, the gallery.

The health report is computed at ingestion (apps.datasets.health) and stored on the version.
Versions ingested before it existed have an empty or partial report; `version_health` fills the
gaps from what every version has (per-class counts, skipped files, the items' sizes) so the
page, the API and the Train button behave the same for old and new versions.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.datasets.health import SIZE_BUCKETS
from apps.datasets.models import Dataset, DatasetItem, DatasetKind, DatasetVersion, Split

SPLITS: tuple[str, ...] = tuple(Split.values)
GALLERY_PAGE_SIZE = 48

#: how to fix the blocking problems found from the counts of versions without a stored report
FIXES: dict[str, Any] = {
    "single_class": gettext_lazy(
        "Add images of at least one more class: upload an archive with a folder per class, or "
        "add images with another label as a new version."
    ),
    "no_classes": gettext_lazy(
        "Upload an archive with one folder per class, e.g. cat/a.jpg, dog/b.png."
    ),
    "empty_split": gettext_lazy(
        "Give every class at least 3 images so that each of train, validation and test gets "
        "one, or add images as a new version."
    ),
}


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _classes(version: DatasetVersion, health: dict) -> dict[str, dict[str, int]]:
    raw = health.get("classes")
    if not isinstance(raw, dict) or not raw:
        raw = version.class_counts or {}
    classes: dict[str, dict[str, int]] = {}
    for label in sorted(raw):
        counts = raw[label] if isinstance(raw[label], dict) else {}
        row = {split: _int(counts.get(split)) for split in SPLITS}
        row["total"] = _int(counts.get("total"), sum(row.values()))
        classes[str(label)] = row
    return classes


def _fallback_problems(classes: dict[str, dict[str, int]]) -> list[dict[str, str]]:
    """The blocking problems every version can be checked for from its counts alone (a stored
    report's messages say how to fix each problem; these carry it in `fix`)."""
    problems = _counted_problems(classes)
    for problem in problems:
        problem["fix"] = str(FIXES[problem["code"]])
    return problems


def _counted_problems(classes: dict[str, dict[str, int]]) -> list[dict[str, str]]:
    if not classes:
        return [
            {
                "code": "no_classes",
                "severity": "blocking",
                "message": _("This version has no images."),
            }
        ]
    problems = []
    if len(classes) == 1:
        (label,) = classes
        problems.append(
            {
                "code": "single_class",
                "severity": "blocking",
                "message": _(
                    "This version has a single class (%(label)s): a classifier needs at least "
                    "two classes to tell apart."
                )
                % {"label": label},
            }
        )
    for split in SPLITS:
        if not any(row[split] for row in classes.values()):
            problems.append(
                {
                    "code": "empty_split",
                    "severity": "blocking",
                    "message": _("The %(split)s split is empty.") % {"split": split},
                }
            )
    return problems


def _sizes_from_items(version: DatasetVersion) -> dict[str, Any]:
    dims = list(DatasetItem.objects.filter(version=version).values_list("width", "height"))
    if not dims:
        return {}
    widths = [w for w, _h in dims]
    heights = [h for _w, h in dims]
    counts: Counter[str] = Counter()
    for w, h in dims:
        side = max(w, h)
        bucket = next((f"≤{b}" for b in SIZE_BUCKETS if side <= b), f">{SIZE_BUCKETS[-1]}")
        counts[bucket] += 1
    order = [f"≤{b}" for b in SIZE_BUCKETS] + [f">{SIZE_BUCKETS[-1]}"]
    return {
        "width": {"min": min(widths), "median": statistics.median(widths), "max": max(widths)},
        "height": {"min": min(heights), "median": statistics.median(heights), "max": max(heights)},
        "histogram": [{"bucket": b, "count": counts[b]} for b in order if counts[b]],
    }


def _formats_from_items(version: DatasetVersion) -> dict[str, int]:
    names = DatasetItem.objects.filter(version=version).exclude(original_format="")
    return dict(Counter(names.values_list("original_format", flat=True)).most_common())


def version_health(version: DatasetVersion) -> dict[str, Any]:
    """The version's health report with every key present, whatever its age.

    Same keys as the stored report (see apps.datasets.health), except that `skipped` is the
    count and `skipped_files` the list of {path, reason}.
    """
    health = version.health if isinstance(version.health, dict) else {}
    # A table's report has problems and trainable only (apps.datasets.tabular).
    images = version.dataset.kind != DatasetKind.TABULAR and version.is_ready
    classes = _classes(version, health)
    totals = [row["total"] for row in classes.values()]
    ratio = health.get("imbalance_ratio")
    if ratio is None and totals and min(totals) > 0:
        ratio = round(max(totals) / min(totals), 2)
    sizes = health.get("sizes")
    if not isinstance(sizes, dict) or not sizes:
        sizes = _sizes_from_items(version) if images else {}
    formats = health.get("formats")
    if not isinstance(formats, dict):
        formats = _formats_from_items(version) if images else {}
    problems = health.get("problems")
    if not isinstance(problems, list):
        problems = _fallback_problems(classes) if images else []
    problems = [dict(p) for p in problems if isinstance(p, dict)]
    for problem in problems:
        problem.setdefault("severity", "warning")
        problem.setdefault("message", problem.get("code", ""))
    blocking = [p for p in problems if p["severity"] == "blocking"]
    trainable = health.get("trainable")
    if not isinstance(trainable, bool):
        trainable = not blocking
    skipped_files = version.skipped if isinstance(version.skipped, list) else []
    return {
        "classes": classes,
        "imbalance_ratio": ratio,
        "min_per_class": health.get("min_per_class"),
        "small_classes": list(health.get("small_classes") or []),
        "duplicates": list(health.get("duplicates") or []),
        "leakage": list(health.get("leakage") or []),
        "sizes": sizes,
        "formats": formats,
        "skipped": _int(health.get("skipped"), len(skipped_files)),
        "skipped_files": skipped_files,
        "problems": problems,
        "trainable": bool(trainable) and version.is_ready,
    }


# --- charts (server-rendered SVG; numbers here are SVG user units) ------------------------


@dataclass
class Segment:
    split: str
    count: int
    x: float
    width: float


@dataclass
class Bar:
    label: str
    short: str
    total: int
    y: float
    small: bool
    segments: list[Segment] = field(default_factory=list)
    end_x: float = 0.0


@dataclass
class ClassChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]


def _shorten(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value`: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^n."""
    if value <= 5:
        return max(value, 1)
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return value


def class_chart(
    classes: dict[str, dict[str, int]], small_classes: Sequence[str] = ()
) -> ClassChart | None:
    """A horizontal stacked bar per class (train, validation, test), scaled to the largest."""
    if not classes:
        return None
    label_width, plot_width, count_width = 150, 440, 60
    bar_height, gap, top = 20, 8, 8
    axis_max = _nice_max(max(row["total"] for row in classes.values()) or 1)
    scale = plot_width / axis_max
    bars = []
    for index, (label, row) in enumerate(classes.items()):
        bar = Bar(
            label=label,
            short=_shorten(label),
            total=row["total"],
            y=top + index * (bar_height + gap),
            small=label in small_classes,
        )
        x = float(label_width)
        for split in SPLITS:
            if row[split]:
                width = round(row[split] * scale, 2)
                bar.segments.append(
                    Segment(split=split, count=row[split], x=round(x, 2), width=width)
                )
                x += width
        bar.end_x = round(x + 6, 2)
        bars.append(bar)
    plot_bottom = top + len(bars) * (bar_height + gap)
    fractions = (0, 0.5, 1) if axis_max % 2 == 0 else (0, 1)
    ticks = [(round(label_width + plot_width * f, 2), int(axis_max * f)) for f in fractions]
    return ClassChart(
        width=label_width + plot_width + count_width,
        height=plot_bottom + 18,
        label_width=label_width,
        bar_height=bar_height,
        bars=bars,
        ticks=ticks,
    )


@dataclass
class Column:
    bucket: str
    count: int
    x: float
    y: float
    width: float
    height: float
    cx: float


@dataclass
class Histogram:
    width: int
    height: int
    baseline: int
    columns: list[Column]


def size_histogram(sizes: dict[str, Any]) -> Histogram | None:
    """Vertical bars of the image size histogram ({"bucket", "count"} rows, in order)."""
    rows = [r for r in (sizes or {}).get("histogram") or [] if isinstance(r, dict)]
    if not rows:
        return None
    width, plot_height, baseline = 360, 100, 120
    slot = width / max(len(rows), 5)
    offset = (width - slot * len(rows)) / 2
    peak = max(_int(r.get("count")) for r in rows) or 1
    columns = []
    for index, row in enumerate(rows):
        count = _int(row.get("count"))
        height = round(plot_height * count / peak, 2)
        columns.append(
            Column(
                bucket=str(row.get("bucket", "")),
                count=count,
                x=round(offset + index * slot + slot * 0.15, 2),
                y=round(baseline - height, 2),
                width=round(slot * 0.7, 2),
                height=height,
                cx=round(offset + index * slot + slot / 2, 2),
            )
        )
    return Histogram(width=width, height=baseline + 22, baseline=baseline, columns=columns)


# --- gallery and versions ----------------------------------------------------------------


@dataclass
class GalleryFilter:
    label: str = ""
    split: str = ""


def gallery_filter(*, version: DatasetVersion, params: Any) -> GalleryFilter:
    """The gallery's filter from query parameters; values the version lacks are ignored."""
    label = str(params.get("label") or "")
    split = str(params.get("split") or "")
    return GalleryFilter(
        label=label if label in (version.class_counts or {}) else "",
        split=split if split in SPLITS else "",
    )


def version_items(*, version: DatasetVersion, label: str = "", split: str = "") -> QuerySet:
    items = DatasetItem.objects.filter(version=version).order_by("label", "original_name", "pk")
    if label:
        items = items.filter(label=label)
    if split:
        items = items.filter(split=split)
    return items


def gallery_page(*, version: DatasetVersion, filters: GalleryFilter, number: Any) -> Page:
    items = version_items(version=version, label=filters.label, split=filters.split)
    return Paginator(items, GALLERY_PAGE_SIZE).get_page(number)


_CHANGE_WORDS = {
    "added": gettext_lazy("%(n)s added"),
    "removed": gettext_lazy("%(n)s removed"),
    "relabelled": gettext_lazy("%(n)s relabelled"),
}
#: what a derived version's `changes` tells its readers (the rest is the worker's to-do list)
CHANGE_KEYS = ("base", "added", "removed", "relabelled", "archive")


def changes_public(changes: Any) -> dict[str, Any]:
    """The counts of a derived version's changes, without the worker's storage paths."""
    if not isinstance(changes, dict):
        return {}
    return {key: changes[key] for key in CHANGE_KEYS if key in changes}


def changes_summary(changes: Any) -> list[str]:
    """A derived version's changes in words: ["3 added", "1 removed", ...]."""
    changes = changes_public(changes)
    words = [
        str(phrase) % {"n": changes[key]}
        for key, phrase in _CHANGE_WORDS.items()
        if isinstance(changes.get(key), int) and changes[key]
    ]
    if changes.get("archive"):
        words.append(str(gettext_lazy("images of %(name)s")) % {"name": changes["archive"]})
    return words


def dataset_versions(*, dataset: Dataset) -> list[DatasetVersion]:
    """Every version of a dataset, newest first, each with `change_summary` in words."""
    versions = list(
        DatasetVersion.objects.filter(dataset=dataset).select_related("parent").order_by("-number")
    )
    for version in versions:
        version.change_summary = changes_summary(version.changes)
    return versions
