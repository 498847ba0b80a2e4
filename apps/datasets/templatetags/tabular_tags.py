"""Template helpers of the tabular summary fragment (templates/datasets/_tabular_summary.html)."""

from __future__ import annotations

from typing import Any

from django import template

from apps.core.errors import ServiceError
from apps.datasets.tabular import tabular_page

register = template.Library()

PREVIEW_ROWS = 10


@register.simple_tag
def tabular_preview(version: Any, rows: int = PREVIEW_ROWS) -> dict[str, Any] | None:
    """The first rows of a ready tabular version's canonical table; None when there is none."""
    try:
        return tabular_page(version, page=1, page_size=rows)
    except ServiceError:
        return None
