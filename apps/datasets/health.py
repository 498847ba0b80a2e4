"""The health report of an image dataset version: what would go wrong in training, before it does.

Computed at the end of ingestion and kept on the version (DatasetVersion.health); the version
page renders it and apps.training.services refuses to train while it lists a blocking problem.
The shape (every key always present):

    {"classes": {label: {"train": n, "validation": n, "test": n, "total": n}},
     "imbalance_ratio": largest class / smallest class (0.0 without classes),
     "min_per_class": LEPTON_MIN_IMAGES_PER_CLASS,
     "small_classes": [labels under it],
     "duplicates": [{"sha256", "paths": [kept copy first, ...]}],
     "leakage": [{"sha256", "paths": [...], "splits": [the splits the copies were put in]}],
     "sizes": {"width": {"min", "median", "max"}, "height": {...},
               "histogram": [{"bucket": "≤64", "count": n}, ...]},   # by the longer side
     "formats": {"JPEG": n, ...},                                       # as uploaded
     "skipped": n,
     "problems": [{"code", "severity": "blocking" | "warning", "message"}],
     "trainable": no blocking problem}
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.datasets.models import DatasetItem, DatasetVersion, Split
from workers.ml.cells import SPLITS

BLOCKING = "blocking"
WARNING = "warning"
#: above this, the largest class outnumbers the smallest enough to skew a model
IMBALANCE_WARNING = 10.0
#: histogram buckets of the longer image side, in pixels (the last is open-ended)
SIZE_BUCKETS: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)


def health_report(
    version: DatasetVersion,
    *,
    duplicates: list[dict[str, Any]] | None = None,
    leakage: list[dict[str, Any]] | None = None,
    items: list[tuple[str, str, int, int, str]] | None = None,
) -> dict[str, Any]:
    """The health report of `version` from its items, skipped files and ingestion findings.

    `duplicates` and `leakage` are found while ingesting (the copies that were dropped leave no
    row behind); without them the ones already on the version's report are kept. `items`
    ((label, split, width, height, original_format) of each item) spares the ingestion, which
    has them at hand, reading back the rows it just wrote.
    """
    previous = version.health or {}
    duplicates = list(previous.get("duplicates", []) if duplicates is None else duplicates)
    leakage = list(previous.get("leakage", []) if leakage is None else leakage)
    rows = items
    if rows is None:
        rows = list(
            DatasetItem.objects.for_organization(version.organization_id)
            .filter(version=version)
            .values_list("label", "split", "width", "height", "original_format")
        )
    classes: dict[str, dict[str, int]] = {}
    for label, split, *_rest in rows:
        per_class = classes.setdefault(label, {s: 0 for s in SPLITS} | {"total": 0})
        per_class[split] = per_class.get(split, 0) + 1
        per_class["total"] += 1
    classes = dict(sorted(classes.items()))
    totals = {label: c["total"] for label, c in classes.items()}
    minimum = settings.LEPTON_MIN_IMAGES_PER_CLASS
    small = sorted(label for label, n in totals.items() if n < minimum)
    imbalance = max(totals.values()) / min(totals.values()) if totals else 0.0
    report: dict[str, Any] = {
        "classes": classes,
        "imbalance_ratio": round(imbalance, 2),
        "min_per_class": minimum,
        "small_classes": small,
        "duplicates": duplicates,
        "leakage": leakage,
        "sizes": _sizes([(w, h) for _l, _s, w, h, _f in rows]),
        "formats": dict(Counter(f or "unknown" for *_rest, f in rows).most_common()),
        "skipped": len(version.skipped or []),
    }
    report["problems"] = _problems(version, report, totals)
    report["trainable"] = not any(p["severity"] == BLOCKING for p in report["problems"])
    return report


def _sizes(sizes: list[tuple[int, int]]) -> dict[str, Any]:
    def summary(values: list[int]) -> dict[str, int]:
        if not values:
            return {"min": 0, "median": 0, "max": 0}
        return {"min": min(values), "median": statistics.median_low(values), "max": max(values)}

    buckets: Counter[str] = Counter()
    for width, height in sizes:
        side = max(width, height)
        bucket = next((f"≤{b}" for b in SIZE_BUCKETS if side <= b), f">{SIZE_BUCKETS[-1]}")
        buckets[bucket] += 1
    names = [f"≤{b}" for b in SIZE_BUCKETS] + [f">{SIZE_BUCKETS[-1]}"]
    return {
        "width": summary([w for w, _h in sizes]),
        "height": summary([h for _w, h in sizes]),
        "histogram": [{"bucket": name, "count": buckets[name]} for name in names],
    }


def _problem(code: str, severity: str, message: str) -> dict[str, str]:
    return {"code": code, "severity": severity, "message": message}


def _problems(
    version: DatasetVersion, report: dict[str, Any], totals: dict[str, int]
) -> list[dict[str, str]]:
    split_totals = {s: sum(c[s] for c in report["classes"].values()) for s in SPLITS}
    found = [
        _single_class(totals),
        *_empty_splits(split_totals, by_manifest=version.split_source == "manifest"),
        _empty_validation(totals, split_totals),
        _small_classes(report),
        _imbalance(report, totals),
        _duplicates(report),
        _leakage(report),
        _skipped_files(report),
    ]
    return [problem for problem in found if problem is not None]


def _single_class(totals: dict[str, int]) -> dict[str, str] | None:
    if len(totals) >= 2:
        return None
    only = f" ('{next(iter(totals))}')" if totals else ""
    return _problem(
        "single_class",
        BLOCKING,
        _(
            "Only %(n)d class%(only)s was found; a classifier needs at least 2. Add a "
            "folder of images for another class (or manifest rows with another label)."
        )
        % {"n": len(totals), "only": only},
    )


def _empty_splits(split_totals: dict[str, int], *, by_manifest: bool) -> list[dict[str, str]]:
    problems = []
    for split in (Split.TRAIN, Split.TEST):
        if split_totals[split]:
            continue
        if by_manifest:
            fix = _("Put some rows of the manifest in the %(split)s split (its split column).")
        elif split == Split.TEST:
            fix = _(
                "Each class needs at least 3 images so that one can be held out for testing; "
                "add images (10 or more per class is better) or give test a share of the split."
            )
        else:
            fix = _("Give train a share of the split ratios.")
        problems.append(
            _problem(
                "empty_split",
                BLOCKING,
                _("The %(split)s split is empty. ") % {"split": split} + fix % {"split": split},
            )
        )
    return problems


def _empty_validation(
    totals: dict[str, int], split_totals: dict[str, int]
) -> dict[str, str] | None:
    if not totals or split_totals[Split.VALIDATION]:
        return None
    return _problem(
        "empty_validation",
        WARNING,
        _(
            "The validation split is empty, so training cannot report how well the model "
            "generalises while it learns. Add images (at least 3 per class) or put some "
            "in the validation split."
        ),
    )


def _small_classes(report: dict[str, Any]) -> dict[str, str] | None:
    small = report["small_classes"]
    if not small:
        return None
    return _problem(
        "small_classes",
        WARNING,
        ngettext(
            "Class %(labels)s has fewer than %(min)d images; a model learns it poorly. "
            "Add images to reach at least %(min)d.",
            "Classes %(labels)s have fewer than %(min)d images; a model learns them "
            "poorly. Add images to reach at least %(min)d each.",
            len(small),
        )
        % {"labels": _quoted(small), "min": report["min_per_class"]},
    )


def _imbalance(report: dict[str, Any], totals: dict[str, int]) -> dict[str, str] | None:
    if report["imbalance_ratio"] <= IMBALANCE_WARNING:
        return None
    largest = max(totals, key=lambda label: totals[label])
    smallest = min(totals, key=lambda label: totals[label])
    return _problem(
        "imbalance",
        WARNING,
        _(
            "The largest class ('%(big)s', %(nb)d images) has %(ratio)s times as many "
            "images as the smallest ('%(small)s', %(ns)d); the model will favour "
            "'%(big)s'. Add images to the small classes or leave some of the large ones "
            "out."
        )
        % {
            "big": largest,
            "nb": totals[largest],
            "small": smallest,
            "ns": totals[smallest],
            "ratio": f"{report['imbalance_ratio']:g}",
        },
    )


def _duplicates(report: dict[str, Any]) -> dict[str, str] | None:
    duplicates = report["duplicates"]
    if not duplicates:
        return None
    copies = sum(len(d["paths"]) - 1 for d in duplicates)
    return _problem(
        "duplicates",
        WARNING,
        ngettext(
            "%(n)d image is an exact copy of another; only the first copy was kept. "
            "Remove the copy from your upload.",
            "%(n)d images are exact copies of others; only the first copy of each was "
            "kept. Remove the copies from your upload.",
            copies,
        )
        % {"n": copies},
    )


def _leakage(report: dict[str, Any]) -> dict[str, str] | None:
    if not report["leakage"]:
        return None
    n = len(report["leakage"])
    return _problem(
        "leakage",
        WARNING,
        ngettext(
            "%(n)d image was put in more than one split (e.g. train and test) under "
            "different names; testing on an image the model trained on overstates its "
            "accuracy. Only the first copy was kept; fix the split column of the "
            "manifest.",
            "%(n)d images were put in more than one split (e.g. train and test) under "
            "different names; testing on images the model trained on overstates its "
            "accuracy. Only the first copy of each was kept; fix the split column of "
            "the manifest.",
            n,
        )
        % {"n": n},
    )


def _skipped_files(report: dict[str, Any]) -> dict[str, str] | None:
    if not report["skipped"]:
        return None
    return _problem(
        "skipped_files",
        WARNING,
        ngettext(
            "%(n)d file was skipped; the list of skipped files says why and how to fix it.",
            "%(n)d files were skipped; the list of skipped files says why and how to fix each.",
            report["skipped"],
        )
        % {"n": report["skipped"]},
    )


def _quoted(labels: list[str], limit: int = 10) -> str:
    shown = ", ".join(f"'{label}'" for label in labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")
