from __future__ import annotations

from typing import Any

from apps.core.scoping import get_active_organization


def portal(request: Any) -> dict:
    return {"active_organization": get_active_organization()}
