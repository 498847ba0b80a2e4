from __future__ import annotations

from typing import Any

from django.utils.functional import SimpleLazyObject

from apps.core.scoping import get_active_organization
from apps.tenants.selectors import organization_menu_for_request


def portal(request: Any) -> dict:
    return {
        "active_organization": get_active_organization(),
        # Lazy: read only by pages that render the header for a logged-in person.
        "organization_menu": SimpleLazyObject(lambda: organization_menu_for_request(request)),
    }
