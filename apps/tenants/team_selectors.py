"""Reads about an organization's team: its members and its invitations.

Every read names the organization, except the one an invitee makes: the accept page knows only
the token in its link (`invitation_by_token`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import QuerySet

from apps.tenants.models import Invitation, Membership, Organization


def invitation_token_hash(token: str) -> str:
    """What is stored of an invitation's token: its SHA-256, in hex. The token carries 256
    random bits, so no salt or slow hash is needed to make guessing from the hash hopeless."""
    return hashlib.sha256(token.encode()).hexdigest()


def members_list(*, organization: Organization) -> QuerySet[Membership]:
    """The organization's memberships, with their users, oldest first."""
    return Membership.objects.filter(organization=organization).select_related("user")


def member_get(*, organization: Organization, membership_id: Any) -> Membership | None:
    """One membership of `organization`, or None (another organization's is absent too)."""
    return members_list(organization=organization).filter(pk=membership_id).first()


def invitations_pending(*, organization: Organization) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked (expired ones included: they can be resent)."""
    return invitations_all(organization=organization).filter(
        accepted_at__isnull=True, revoked_at__isnull=True
    )


def invitations_all(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(organization=organization).select_related("invited_by")


def invitation_get(*, organization: Organization, invitation_id: Any) -> Invitation | None:
    """One invitation of `organization`, or None (another organization's is absent too)."""
    return invitations_all(organization=organization).filter(pk=invitation_id).first()


def invitation_by_token(*, token: str) -> Invitation | None:
    """The invitation a link's token names, whatever its state, or None. The one lookup not
    filtered by organization: the person holding the link belongs to none of them yet."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=invitation_token_hash(token), organization__is_active=True)
        .first()
    )
