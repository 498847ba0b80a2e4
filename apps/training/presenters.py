"""What the evaluation and leaderboard pages show, computed from stored evaluations."""

from __future__ import annotations

from typing import Any

from apps.training.models import ModelVersion


def evaluation_context(model_version: ModelVersion) -> dict[str, Any]:
    """Template context for templates/training/_evaluation.html."""
    evaluation = model_version.evaluation
    if model_version.task != "image-classification":
        return {"evaluation": evaluation}
    return {
        "evaluation": evaluation,
        "confusion_rows": list(zip(evaluation["labels"], evaluation["confusion"], strict=True)),
    }
