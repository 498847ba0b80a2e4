from __future__ import annotations

from typing import Any

from apps.core.jobs import JobStatus
from apps.core.scoping import get_active_organization


def portal(request: Any) -> dict:
    return {
        "active_organization": get_active_organization(),
        "status_labels": {str(value): str(label) for value, label in JobStatus.choices},
    }
