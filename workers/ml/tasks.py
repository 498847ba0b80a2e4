"""The kinds of model the portal trains and serves, named once (Django-free, torch-free).

The model bundle records its task (workers.ml.checkpoint), the template catalogue offers
templates by task (apps.training.templates), and endpoints read rows or images by it.
"""

from __future__ import annotations

IMAGE_CLASSIFICATION = "image-classification"
TABULAR_REGRESSION = "tabular-regression"
TASKS: tuple[str, str] = (IMAGE_CLASSIFICATION, TABULAR_REGRESSION)
