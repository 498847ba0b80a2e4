"""Writes about an organization's team: invitations by email, role changes, removals, leaving.

Who may do what:

- owners and admins invite, resend and revoke invitations, change roles and remove members;
- only an owner makes someone an owner, or changes or removes an owner (an admin cannot touch
  an owner, nor invite one);
- the organization always keeps an owner: its last owner cannot be demoted, removed or leave.

Every write takes the organization's row lock first, so two admins acting at once are applied
one after the other and cannot, say, remove the last two owners together. Every write records
an audit row.
"""

from __future__ import annotations

import functools
import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import Conflict, Forbidden, InvalidInput, ServiceError
from apps.tenants.models import Invitation, Membership, Organization, Role
from apps.tenants.team_selectors import invitation_by_token, invitation_token_hash

logger = logging.getLogger(__name__)

#: the longest address the User model stores
EMAIL_MAX_LENGTH = 254


class InvitationUnusable(ServiceError):
    """The link's invitation cannot be accepted (unknown, expired, revoked or used)."""

    status_code = 410
    code = "invitation_unusable"


# --- checks --------------------------------------------------------------------------------


def _lock(organization: Organization) -> Organization:
    """Take the organization's row lock: the team's writes run one at a time."""
    return Organization.objects.select_for_update().get(pk=organization.pk)


def _actor_role(*, organization: Organization, actor: Any) -> str | None:
    membership = Membership.objects.filter(organization=organization, user_id=actor.pk).first()
    return membership.role if membership else None


def _require_manager(*, organization: Organization, actor: Any) -> str:
    """The actor's role, when it is admin or owner; else a 403 that says who can."""
    role = _actor_role(organization=organization, actor=actor)
    if role is None or not Role.at_least(role, Role.ADMIN):
        raise Forbidden(
            _("Only an owner or an admin of %(organization)s can manage its members.")
            % {"organization": organization.name}
        )
    return role


def _clean_role(role: Any) -> str:
    if not isinstance(role, str) or role not in Role.values:
        raise InvalidInput(
            _("Choose a role among %(roles)s.") % {"roles": ", ".join(Role.values)},
            field="role",
        )
    return role


def _clean_email(email: Any) -> str:
    if not isinstance(email, str):
        raise InvalidInput(_("Enter the email address as text."), field="email")
    email = email.strip().lower()
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidInput(
            _("The email address is too long: %(max)d characters at most.")
            % {"max": EMAIL_MAX_LENGTH},
            field="email",
        )
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(
            _("Enter a valid email address, like name@company.com."), field="email"
        ) from None
    return email


def _owner_only(*, actor_role: str, what: str) -> None:
    if actor_role != Role.OWNER:
        raise Forbidden(_("Only an owner can %(what)s.") % {"what": what})


def _keep_an_owner(*, organization: Organization, membership: Membership, what: str) -> None:
    """Refuse to take away the organization's last owner."""
    if membership.role != Role.OWNER:
        return
    owners = Membership.objects.filter(organization=organization, role=Role.OWNER)
    if not owners.exclude(pk=membership.pk).exists():
        raise InvalidInput(
            _(
                "%(email)s is the last owner of %(organization)s and cannot %(what)s. Make "
                "another member an owner first."
            )
            % {"email": membership.user.email, "organization": organization.name, "what": what},
            code="last_owner",
        )


def _revoke_member_keys(*, organization: Organization, user: Any) -> int:
    """Revoke the API keys `user` made in `organization`: a key acts as its maker, and one left
    alive would come back to life if the person were ever invited again."""
    from apps.accounts.models import ApiKey

    return (
        ApiKey.objects.for_organization(organization)
        .filter(created_by=user, revoked_at__isnull=True)
        .update(revoked_at=timezone.now(), updated_at=timezone.now())
    )


# --- invitations ---------------------------------------------------------------------------


def _new_token(invitation: Invitation) -> str:
    """Give the invitation a fresh token and expiry; the previous link stops working."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    invitation.token_hash = invitation_token_hash(token)
    invitation.expires_at = now + timedelta(days=settings.LEPTON_INVITATION_DAYS)
    invitation.last_sent_at = now
    return token


def invitation_link(*, site_url: str, token: str) -> str:
    """The absolute accept link for `token`, under `site_url` (like https://portal.example)."""
    return site_url.rstrip("/") + reverse("invitations:accept", kwargs={"token": token})


def _send_invitation(*, invitation_id: Any, link: str) -> None:
    invitation = Invitation.objects.select_related("organization", "invited_by").get(
        pk=invitation_id
    )
    context = {
        "organization": invitation.organization.name,
        "inviter": invitation.invited_by.email if invitation.invited_by else "",
        "role": invitation.get_role_display(),
        "link": link,
        "expires_at": invitation.expires_at,
        "days": settings.LEPTON_INVITATION_DAYS,
    }
    subject = render_to_string("tenants/invitation_subject.txt", context).strip()
    body = render_to_string("tenants/invitation_email.txt", context)
    try:
        send_mail(subject, body, None, [invitation.email])
    except Exception:
        # The invitation stands: an owner can resend it once the mail server answers again.
        logger.exception("Could not send the invitation %s", invitation.pk)


def _send_on_commit(invitation: Invitation, *, site_url: str, token: str) -> None:
    link = invitation_link(site_url=site_url, token=token)
    transaction.on_commit(
        functools.partial(_send_invitation, invitation_id=invitation.pk, link=link)
    )


def invitation_create(
    *, organization: Organization, actor: Any, email: Any, role: Any, site_url: str
) -> Invitation:
    """Invite `email` to join `organization` with `role`, by an emailed single-use link.

    Owners and admins invite; only owners invite owners. An address that already has an open
    invitation gets it refreshed (new link, role and expiry; the old link stops working). An
    address that is already a member is refused: change that member's role instead. The email
    is sent once the transaction commits; `site_url` is the portal's address the link starts
    with.
    """
    email = _clean_email(email)
    role = _clean_role(role)
    with transaction.atomic():
        organization = _lock(organization)
        actor_role = _require_manager(organization=organization, actor=actor)
        if role == Role.OWNER:
            _owner_only(actor_role=actor_role, what=_("invite an owner"))
        if Membership.objects.filter(organization=organization, user__email=email).exists():
            raise Conflict(
                _(
                    "%(email)s is already a member of %(organization)s. Change their role in "
                    "the members list instead."
                )
                % {"email": email, "organization": organization.name},
                field="email",
            )
        invitation = (
            Invitation.objects.select_for_update()
            .filter(
                organization=organization,
                email=email,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
            )
            .first()
        )
        if invitation is not None and invitation.role == Role.OWNER:
            _owner_only(actor_role=actor_role, what=_("change an invitation to be an owner"))
        refreshed = invitation is not None
        invitation = invitation or Invitation(organization=organization, email=email)
        invitation.role = role
        invitation.invited_by = actor
        token = _new_token(invitation)
        invitation.save()
        audit_record(
            organization=organization,
            actor=actor,
            action="invitation.create",
            target=invitation,
            data={"email": email, "role": role, "refreshed": refreshed},
        )
        _send_on_commit(invitation, site_url=site_url, token=token)
    return invitation


def _pending_for_manager(
    *, organization: Organization, actor: Any, invitation: Invitation, what: str
) -> Invitation:
    """The invitation, locked, when the actor may manage it and it is still open."""
    actor_role = _require_manager(organization=organization, actor=actor)
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk, organization=organization)
    if locked.role == Role.OWNER:
        _owner_only(actor_role=actor_role, what=what)
    if locked.accepted_at is not None:
        raise Conflict(
            _("%(email)s already accepted this invitation; manage them in the members list.")
            % {"email": locked.email}
        )
    if locked.revoked_at is not None:
        raise Conflict(
            _("This invitation was revoked. Invite %(email)s again to send a new one.")
            % {"email": locked.email}
        )
    return locked


def invitation_resend(
    *, organization: Organization, actor: Any, invitation: Invitation, site_url: str
) -> Invitation:
    """Send an open invitation again with a new link and a new expiry; the old link stops
    working. Accepted or revoked invitations are refused (409)."""
    with transaction.atomic():
        organization = _lock(organization)
        locked = _pending_for_manager(
            organization=organization,
            actor=actor,
            invitation=invitation,
            what=_("resend an invitation to be an owner"),
        )
        token = _new_token(locked)
        locked.invited_by = actor
        locked.save(
            update_fields=["token_hash", "expires_at", "last_sent_at", "invited_by", "updated_at"]
        )
        audit_record(
            organization=organization,
            actor=actor,
            action="invitation.resend",
            target=locked,
            data={"email": locked.email},
        )
        _send_on_commit(locked, site_url=site_url, token=token)
    return locked


def invitation_revoke(
    *, organization: Organization, actor: Any, invitation: Invitation
) -> Invitation:
    """Revoke an open invitation: its link stops working. Revoking twice is refused (409), as is
    revoking an accepted one (remove the member instead)."""
    with transaction.atomic():
        organization = _lock(organization)
        locked = _pending_for_manager(
            organization=organization,
            actor=actor,
            invitation=invitation,
            what=_("revoke an invitation to be an owner"),
        )
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            organization=organization,
            actor=actor,
            action="invitation.revoke",
            target=locked,
            data={"email": locked.email},
        )
    return locked


def invitation_check(*, token: str) -> Invitation:
    """The invitation a link names, when it can still be accepted; else InvitationUnusable
    saying why (unknown, revoked, used or expired) and what to do."""
    invitation = invitation_by_token(token=token)
    if invitation is None:
        raise InvitationUnusable(
            _(
                "This invitation link is not valid. Check that you opened the whole link from "
                "the email, or ask the organization's owner for a new invitation."
            ),
            status_code=404,
        )
    inviter = invitation.invited_by.email if invitation.invited_by else _("its owner")
    if invitation.revoked_at is not None:
        raise InvitationUnusable(
            _(
                "This invitation to %(organization)s was revoked. Ask %(inviter)s to invite "
                "you again."
            )
            % {"organization": invitation.organization.name, "inviter": inviter}
        )
    if invitation.accepted_at is not None:
        raise InvitationUnusable(
            _(
                "This invitation to %(organization)s was already used. Log in as %(email)s to "
                "work in it, or ask %(inviter)s for a new invitation."
            )
            % {
                "organization": invitation.organization.name,
                "email": invitation.email,
                "inviter": inviter,
            }
        )
    if invitation.is_expired:
        raise InvitationUnusable(
            _("This invitation to %(organization)s has expired. Ask %(inviter)s to send it again.")
            % {"organization": invitation.organization.name, "inviter": inviter}
        )
    return invitation


def invitation_accept(*, token: str, user: Any) -> Membership:
    """Join the organization of the invitation `token` names, with its role, as `user`.

    The user must be logged in with the invited address (the message names it otherwise). The
    link works once: it is spent by the first acceptance, even when two arrive together.
    """
    checked = invitation_check(token=token)
    organization = checked.organization
    with transaction.atomic():
        _lock(organization)
        invitation = Invitation.objects.select_for_update().get(pk=checked.pk)
        if invitation.token_hash != checked.token_hash or not invitation.is_pending:
            # Resent, revoked or used between the check and the lock: say which.
            invitation_check(token=token)
            raise InvitationUnusable(_("This invitation link no longer works."))
        if (user.email or "").lower() != invitation.email:
            raise Forbidden(
                _(
                    "This invitation is for %(invited)s, and you are logged in as %(current)s. "
                    "Log out, then log in or sign up as %(invited)s to accept it."
                )
                % {"invited": invitation.email, "current": user.email},
                code="wrong_account",
            )
        if Membership.objects.filter(organization=organization, user=user).exists():
            raise Conflict(
                _("You are already a member of %(organization)s.")
                % {"organization": organization.name}
            )
        membership = Membership.objects.create(
            organization=organization, user=user, role=invitation.role
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
        audit_record(
            organization=organization,
            actor=user,
            action="invitation.accept",
            target=membership,
            data={
                "email": invitation.email,
                "role": invitation.role,
                "invitation": str(invitation.pk),
            },
        )
    return membership


def invitation_signup(*, token: str, password: Any) -> tuple[Any, Membership]:
    """Create the account of a new person invited by `token` (their email is the invited one)
    and accept the invitation: they join that organization with its role, and no organization
    of their own is created."""
    invitation = invitation_check(token=token)
    User = get_user_model()
    if User.objects.filter(email=invitation.email).exists():
        raise Conflict(
            _("An account for %(email)s already exists. Log in to accept the invitation.")
            % {"email": invitation.email}
        )
    if not isinstance(password, str) or not password:
        raise InvalidInput(_("Choose a password."), field="password")
    candidate = User(email=invitation.email, username=invitation.email)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password") from None
    with transaction.atomic():
        user = User.objects.create_user(email=invitation.email, password=password)
        membership = invitation_accept(token=token, user=user)
    return user, membership


# --- members -------------------------------------------------------------------------------


def member_role_change(
    *, organization: Organization, actor: Any, membership: Membership, role: Any
) -> Membership:
    """Give a member another role. Owners and admins change roles; only an owner makes or
    unmakes an owner; the last owner keeps the role."""
    role = _clean_role(role)
    with transaction.atomic():
        organization = _lock(organization)
        actor_role = _require_manager(organization=organization, actor=actor)
        locked = (
            Membership.objects.select_for_update()
            .select_related("user")
            .get(pk=membership.pk, organization=organization)
        )
        if locked.role == role:
            return locked
        if Role.OWNER in (locked.role, role):
            _owner_only(
                actor_role=actor_role, what=_("make someone an owner or change an owner's role")
            )
        _keep_an_owner(organization=organization, membership=locked, what=_("be demoted"))
        previous = locked.role
        locked.role = role
        locked.save(update_fields=["role", "updated_at"])
        audit_record(
            organization=organization,
            actor=actor,
            action="member.role_change",
            target=locked,
            data={"email": locked.user.email, "from": previous, "to": role},
        )
    return locked


def _membership_delete(
    *, organization: Organization, actor: Any, membership: Membership, action: str
) -> None:
    user = membership.user
    keys_revoked = _revoke_member_keys(organization=organization, user=user)
    audit_record(
        organization=organization,
        actor=actor,
        action=action,
        target=membership,
        data={"email": user.email, "role": membership.role, "api_keys_revoked": keys_revoked},
    )
    membership.delete()


def member_remove(*, organization: Organization, actor: Any, membership: Membership) -> None:
    """Remove a member from the organization; the API keys they made in it are revoked. Owners
    and admins remove members; only an owner removes an owner; the last owner stays."""
    with transaction.atomic():
        organization = _lock(organization)
        actor_role = _require_manager(organization=organization, actor=actor)
        locked = (
            Membership.objects.select_for_update()
            .select_related("user")
            .get(pk=membership.pk, organization=organization)
        )
        if locked.role == Role.OWNER:
            _owner_only(actor_role=actor_role, what=_("remove an owner"))
        _keep_an_owner(organization=organization, membership=locked, what=_("be removed"))
        _membership_delete(
            organization=organization, actor=actor, membership=locked, action="member.remove"
        )


def member_leave(*, organization: Organization, user: Any) -> None:
    """Leave the organization (any role); the API keys you made in it are revoked. The last
    owner cannot leave: make another member an owner first."""
    with transaction.atomic():
        organization = _lock(organization)
        locked = (
            Membership.objects.select_for_update()
            .select_related("user")
            .filter(organization=organization, user_id=user.pk)
            .first()
        )
        if locked is None:
            raise InvalidInput(
                _("You are not a member of %(organization)s.")
                % {"organization": organization.name},
                status_code=404,
            )
        _keep_an_owner(organization=organization, membership=locked, what=_("leave"))
        _membership_delete(
            organization=organization, actor=user, membership=locked, action="member.leave"
        )
