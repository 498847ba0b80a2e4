"""A table's health report: the problems that would ruin training (blocking) or deserve a look
(warnings), recomputed whenever the customer changes the columns' types and roles."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from workers.ml.cells import SPLITS

MIN_TRAINABLE_ROWS = 10


def _problem(code: str, message: str, severity: str = "blocking") -> dict[str, str]:
    return {"code": code, "severity": severity, "message": message}


def tabular_health(schema: dict[str, Any], row_count: int) -> dict[str, Any]:
    """Problems that would ruin training (errors) or deserve a look (warnings)."""
    columns = schema.get("columns", [])
    target = next((c for c in columns if c["name"] == schema.get("target")), None)
    problems = _target_problems(target)
    problems.extend(_table_problems(schema, columns, row_count))
    return {
        "problems": problems,
        "trainable": not any(p["severity"] == "blocking" for p in problems),
    }


def _target_problems(target: dict[str, Any] | None) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    if target is None:
        problems.append(
            _problem(
                "no_target",
                _(
                    "No numeric target column was found. Choose the column to predict, or "
                    "name it 'target' in the file."
                ),
            )
        )
    elif target["type"] != "numeric":
        problems.append(
            _problem(
                "target_not_numeric",
                _("The target '%(column)s' is not numeric; choose a column of numbers to predict.")
                % {"column": target["name"]},
            )
        )
    else:
        p = target["profile"]
        if p["missing"]:
            rows = ", ".join(map(str, p["missing_rows"]))
            problems.append(
                _problem(
                    "target_missing",
                    ngettext(
                        "The target '%(column)s' is empty in %(n)d row (row %(rows)s): fill "
                        "it in or remove that row.",
                        "The target '%(column)s' is empty in %(n)d rows (rows %(rows)s): "
                        "fill them in or remove those rows.",
                        p["missing"],
                    )
                    % {"column": target["name"], "n": p["missing"], "rows": rows},
                )
            )
        if p["unique"] <= 1:
            problems.append(
                _problem(
                    "target_constant",
                    _("The target '%(column)s' has a single value: there is nothing to learn.")
                    % {"column": target["name"]},
                )
            )
    return problems


def _table_problems(
    schema: dict[str, Any], columns: list[dict[str, Any]], row_count: int
) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    if not any(c["role"] == "feature" for c in columns):
        problems.append(
            _problem(
                "no_features",
                _("No column is used as a feature: set at least one column's role to feature."),
            )
        )
    if row_count < MIN_TRAINABLE_ROWS:
        problems.append(
            _problem(
                "too_few_rows",
                ngettext(
                    "The table has %(n)d row; a model needs at least %(min)d markets.",
                    "The table has %(n)d rows; a model needs at least %(min)d markets.",
                    row_count,
                )
                % {"n": row_count, "min": MIN_TRAINABLE_ROWS},
            )
        )
    for column in columns:
        if column["role"] == "ignore":
            continue
        for problem in column["problems"]:
            if problem["severity"] == "blocking" or column["role"] == "feature":
                problems.append(_problem(problem["code"], problem["message"], problem["severity"]))
    counts = schema.get("split", {}).get("counts", {})
    if counts and row_count >= MIN_TRAINABLE_ROWS:
        for name in SPLITS:
            if not counts.get(name):
                problems.append(
                    _problem(
                        "empty_split",
                        _("The %(split)s split is empty; change the split ratios.")
                        % {"split": name},
                    )
                )
    if schema.get("source", {}).get("blank_rows"):
        n = schema["source"]["blank_rows"]
        problems.append(
            _problem(
                "blank_rows",
                ngettext("%(n)d blank row was skipped.", "%(n)d blank rows were skipped.", n)
                % {"n": n},
                "warning",
            )
        )
    return problems
