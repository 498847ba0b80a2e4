from __future__ import annotations

from typing import Any

from django.utils.functional import SimpleLazyObject

from apps.core.scoping import get_active_organization
from apps.tenants.models import Role
from apps.tenants.selectors import organization_menu_for_request


def portal(request: Any) -> dict:
    role = getattr(request, "role", None)  # set by @org_page
    return {
        "active_organization": get_active_organization(),
        "current_role": role,
        # Pages offer create forms (upload, new model, deploy, try it) only to roles that may
        # use them; a viewer reads. Changing an existing object is the view's `can_change`.
        "can_create": role is not None and Role.at_least(role, Role.MEMBER),
        # Lazy: read only by pages that render the header for a logged-in person.
        "organization_menu": SimpleLazyObject(lambda: organization_menu_for_request(request)),
    }
