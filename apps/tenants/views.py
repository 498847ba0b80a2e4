"""Team pages: the members list with invitations (owners and admins manage, everyone reads), and
the page an invitation's link opens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.throttling import SIGNUP, TooManyAttempts
from apps.core.errors import ServiceError
from apps.core.views import org_page, render_with_error
from apps.tenants.models import Invitation, Membership, Role
from apps.tenants.selectors import SESSION_KEY
from apps.tenants.team import (
    invitation_accept,
    invitation_check,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    invitation_signup,
    member_leave,
    member_remove,
    member_role_change,
)
from apps.tenants.team_selectors import (
    invitation_by_token,
    invitation_get,
    invitations_pending,
    member_get,
    members_list,
)

MEMBERS_TEMPLATE = "tenants/members.html"
ACCEPT_TEMPLATE = "tenants/invitation_accept.html"


def _members_context(request: Any) -> dict[str, Any]:
    organization, role = request.organization, request.role
    can_manage = Role.at_least(role, Role.ADMIN)
    is_owner = role == Role.OWNER
    rows = []
    for membership in members_list(organization=organization):
        is_self = membership.user_id == request.user.pk
        # What the page offers mirrors what the services allow: only owners touch owners.
        may_change = can_manage and not is_self and (is_owner or membership.role != Role.OWNER)
        rows.append({"membership": membership, "is_self": is_self, "may_change": may_change})
    return {
        "members": rows,
        "invitations": invitations_pending(organization=organization) if can_manage else [],
        "can_manage": can_manage,
        "role_choices": [
            (value, label) for value, label in Role.choices if is_owner or value != Role.OWNER
        ],
        "values": {"role": Role.MEMBER},
    }


@org_page()
def members(request: HttpRequest) -> HttpResponse:
    return render(request, MEMBERS_TEMPLATE, _members_context(request))


@require_POST
@org_page()
def invite(request: HttpRequest) -> HttpResponse:
    try:
        invitation = invitation_create(
            organization=request.organization,  # type: ignore[attr-defined]
            actor=request.user,
            email=request.POST.get("email", ""),
            role=request.POST.get("role", ""),
            site_url=request.build_absolute_uri("/"),
        )
    except ServiceError as exc:
        context = _members_context(request) | {"values": request.POST}
        return render_with_error(request, MEMBERS_TEMPLATE, context, exc)
    messages.success(
        request,
        _("An invitation was sent to %(email)s. The link expires on %(date)s.")
        % {"email": invitation.email, "date": _date(invitation.expires_at)},
    )
    return redirect("tenants:members")


def _date(value: Any) -> str:
    from django.utils.formats import date_format
    from django.utils.timezone import localtime

    return date_format(localtime(value), "DATE_FORMAT")


def _member_or_404(request: Any, pk: Any) -> Membership:
    membership = member_get(organization=request.organization, membership_id=pk)
    if membership is None:
        raise Http404
    return membership


def _invitation_or_404(request: Any, pk: Any) -> Invitation:
    invitation = invitation_get(organization=request.organization, invitation_id=pk)
    if invitation is None:
        raise Http404
    return invitation


def _back_with(request: HttpRequest, success: Callable[[], str]) -> HttpResponse:
    """Run `success()` (a service call returning the message to show) and go back to the list;
    a refusal shows its message there instead."""
    try:
        messages.success(request, success())
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("tenants:members")


@require_POST
@org_page()
def member_role(request: HttpRequest, pk: Any) -> HttpResponse:
    membership = _member_or_404(request, pk)

    def change() -> str:
        changed = member_role_change(
            organization=request.organization,  # type: ignore[attr-defined]
            actor=request.user,
            membership=membership,
            role=request.POST.get("role", ""),
        )
        return _("%(email)s is now %(role)s.") % {
            "email": changed.user.email,
            "role": changed.get_role_display(),
        }

    return _back_with(request, change)


@require_POST
@org_page()
def member_remove_view(request: HttpRequest, pk: Any) -> HttpResponse:
    membership = _member_or_404(request, pk)

    def remove() -> str:
        member_remove(
            organization=request.organization,  # type: ignore[attr-defined]
            actor=request.user,
            membership=membership,
        )
        return _("%(email)s was removed from the organization.") % {"email": membership.user.email}

    return _back_with(request, remove)


@require_POST
@org_page()
def leave(request: HttpRequest) -> HttpResponse:
    organization = request.organization  # type: ignore[attr-defined]
    try:
        member_leave(organization=organization, user=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("tenants:members")
    if request.session.get(SESSION_KEY) == str(organization.pk):
        del request.session[SESSION_KEY]
    messages.success(request, _("You left %(organization)s.") % {"organization": organization.name})
    return redirect("home")


@require_POST
@org_page()
def invitation_resend_view(request: HttpRequest, pk: Any) -> HttpResponse:
    invitation = _invitation_or_404(request, pk)

    def resend() -> str:
        sent = invitation_resend(
            organization=request.organization,  # type: ignore[attr-defined]
            actor=request.user,
            invitation=invitation,
            site_url=request.build_absolute_uri("/"),
        )
        return _(
            "The invitation was sent again to %(email)s; the earlier link no longer works."
        ) % {"email": sent.email}

    return _back_with(request, resend)


@require_POST
@org_page()
def invitation_revoke_view(request: HttpRequest, pk: Any) -> HttpResponse:
    invitation = _invitation_or_404(request, pk)

    def revoke() -> str:
        invitation_revoke(
            organization=request.organization,  # type: ignore[attr-defined]
            actor=request.user,
            invitation=invitation,
        )
        return _("The invitation to %(email)s was revoked.") % {"email": invitation.email}

    return _back_with(request, revoke)


# --- the invitation's link ------------------------------------------------------------------


def _joined(request: HttpRequest, membership: Membership) -> HttpResponse:
    # Land in the organization just joined, not in one the person already had.
    request.session[SESSION_KEY] = str(membership.organization_id)
    messages.success(
        request,
        _("Welcome to %(organization)s! You joined as %(role)s.")
        % {"organization": membership.organization.name, "role": membership.get_role_display()},
    )
    return redirect("home")


def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    """Logged in as the invited address: a Join button. Logged out: sign up with the invited
    address (fixed), or log in and come back here."""
    try:
        invitation = invitation_check(token=token)
    except ServiceError as exc:
        known = invitation_by_token(token=token)
        context = {"unusable": True, "invitation": known}
        return render_with_error(request, ACCEPT_TEMPLATE, context, exc)
    has_account = get_user_model().objects.filter(email=invitation.email).exists()
    context: dict[str, Any] = {"invitation": invitation, "has_account": has_account}
    if request.user.is_authenticated:
        context["wrong_account"] = request.user.email != invitation.email
        if request.method == "POST":
            try:
                membership = invitation_accept(token=token, user=request.user)
            except ServiceError as exc:
                return render_with_error(request, ACCEPT_TEMPLATE, context, exc)
            return _joined(request, membership)
        return render(request, ACCEPT_TEMPLATE, context)
    if request.method == "POST":
        try:
            SIGNUP.reserve(request, account=invitation.email)
            user, membership = invitation_signup(
                token=token, password=request.POST.get("password", "")
            )
        except ServiceError as exc:
            response = render_with_error(request, ACCEPT_TEMPLATE, context, exc)
            if isinstance(exc, TooManyAttempts):
                response["Retry-After"] = str(exc.retry_after)
            return response
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return _joined(request, membership)
    return render(request, ACCEPT_TEMPLATE, context)
