"""Reads about organizations and memberships."""

from __future__ import annotations

from typing import Any

from apps.tenants.models import Membership, Organization

SESSION_KEY = "active_organization_id"


def membership_get(*, user: Any, organization: Organization) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization=organization, organization__is_active=True)
        .first()
    )


def memberships_for_user(*, user: Any) -> list[Membership]:
    return list(
        Membership.objects.select_related("organization")
        .filter(user=user, organization__is_active=True)
        .order_by("created_at")
    )


def organization_for_request(request: Any) -> tuple[Organization | None, str | None]:
    """The organization a request acts for, and the caller's role in it.

    An API key names its organization; a browser session uses the organization chosen in the
    session, else the user's first membership.
    """
    user = request.user
    # Only API key authentication sets request.auth (sessions leave it None), and the key names
    # its organization; read by attribute so the core layer does not import apps.accounts.
    key_organization = getattr(getattr(request, "auth", None), "organization", None)
    if key_organization is not None:
        membership = membership_get(user=user, organization=key_organization)
        return (membership.organization, membership.role) if membership else (None, None)
    memberships = memberships_for_user(user=user) if user.is_authenticated else []
    if not memberships:
        return None, None
    chosen_id = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    for membership in memberships:
        if str(membership.organization_id) == chosen_id:
            return membership.organization, membership.role
    return memberships[0].organization, memberships[0].role
