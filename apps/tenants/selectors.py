"""Reads about organizations and memberships."""

from __future__ import annotations

from dataclasses import dataclass, field
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


def memberships_for_credentials(*, user: Any, key_organization: Any = None) -> list[Membership]:
    """The memberships a caller may act through: an API key's organization alone (keys never
    reach their creator's other organizations), else every one of the user's, by name."""
    if key_organization is not None:
        membership = membership_get(user=user, organization=key_organization)
        return [membership] if membership else []
    return _by_name(memberships_for_user(user=user))


def _by_name(memberships: list[Membership]) -> list[Membership]:
    return sorted(memberships, key=lambda m: (m.organization.name.casefold(), m.created_at))


def membership_for_switch(*, user: Any, organization_id: Any) -> Membership | None:
    """The user's membership of the organization they ask to switch to, or None when they are
    not a member of it or it is inactive (both look like a missing organization). A suspended
    organization is returned: switching to it shows its suspension page."""
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization_id=organization_id, organization__is_active=True)
        .first()
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
    memberships = _memberships_of_request(request) if user.is_authenticated else []
    chosen = _session_choice(request, memberships)
    return (chosen.organization, chosen.role) if chosen else (None, None)


def _memberships_of_request(request: Any) -> list[Membership]:
    # A page resolves its organization (org_page) and then renders the header's switcher from
    # the same memberships: read once per request. Both views that change them redirect.
    cached = getattr(request, "_lepton_memberships", None)
    if cached is None:
        cached = memberships_for_user(user=request.user)
        request._lepton_memberships = cached
    return cached


def _session_choice(request: Any, memberships: list[Membership]) -> Membership | None:
    """The membership the session chose (apps.tenants.switch_views), else the first one: a
    choice left over from an organization the user has left or that was deactivated falls back
    quietly, as if never made."""
    chosen_id = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    for membership in memberships:
        if str(membership.organization_id) == chosen_id:
            return membership
    return memberships[0] if memberships else None


@dataclass(frozen=True)
class OrganizationMenu:
    """What the header's organization switcher shows: the organization the pages act for and
    every organization the user belongs to, by name."""

    active: Membership | None = None
    memberships: list[Membership] = field(default_factory=list)


def organization_menu_for_request(request: Any) -> OrganizationMenu:
    """The switcher of a browser request (sessions only: API keys never render pages)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return OrganizationMenu()
    memberships = _memberships_of_request(request)
    return OrganizationMenu(
        active=_session_choice(request, memberships),
        memberships=_by_name(memberships),
    )
