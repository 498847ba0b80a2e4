"""The API's answer to a suspended organization, shared by API-key authentication and the API's
base view (a session's organization is known only there)."""

from __future__ import annotations

from rest_framework import exceptions

from apps.tenants.models import Organization


class OrganizationSuspended(exceptions.PermissionDenied):
    """403 `suspended`: platform staff suspended the caller's organization (its keys, sessions
    and endpoints alike); the message gives the reason and whom to contact."""

    default_code = "suspended"

    def __init__(self, organization: Organization) -> None:
        super().__init__(detail=organization.suspension_message(), code="suspended")
