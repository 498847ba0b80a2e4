"""Changing a user's email, confirmed from the new address.

A request sends a link to the new address and a notice to the old one; the email changes only
when the link is opened by the account that asked (apps.accounts.email_views). The link carries
a `django.core.signing` token, so nothing is stored until it is used: it names the user and the
new address, expires after LEPTON_EMAIL_CHANGE_TIMEOUT, and holds a digest of the account's
current email and password hash, so every link sent before stops working once the email changes
(this one used, or another) or the password does (what the notice to the old address advises).

Whether the new address already has an account is not said when the link is asked for (the
answer is the same either way, so the page cannot be used to find out who has an account); the
confirmation refuses it, to the person who proved they read that address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.errors import Conflict, InvalidInput, ServiceError
from apps.tenants.selectors import memberships_for_user

SALT = "apps.accounts.email_change"


class EmailChangeRefused(ServiceError):
    """The confirmation link cannot change the email (bad, expired, spent or not yours)."""

    status_code = 400
    code = "email_change_refused"


@dataclass(frozen=True)
class EmailChangeClaim:
    """What a valid confirmation link asks: `user`'s email to become `new_email`."""

    user: User
    new_email: str


def _normalized(email: Any) -> str:
    return email.strip().lower() if isinstance(email, str) else ""


def _account_state(user: User) -> str:
    # Keyed by SECRET_KEY, so the token (readable base64) does not show the password hash's
    # digest in the clear; a new email or password gives a new state.
    return salted_hmac(SALT, f"{user.pk}|{user.email}|{user.password}").hexdigest()[:32]


def email_change_token(*, user: User, new_email: str) -> str:
    """The signed token of a link that changes `user`'s email to `new_email`."""
    payload = {"u": str(user.pk), "e": new_email, "s": _account_state(user)}
    return signing.dumps(payload, salt=SALT, compress=True)


def _hours(seconds: int) -> int:
    return max(1, seconds // 3600)


def email_change_request(*, user: User, new_email: str, site_url: str) -> None:
    """Send a confirmation link for `new_email` to that address, and a notice to the current one.

    `site_url` is the portal's address as the person reached it (`https://portal.example.com`),
    for the links. Nothing about the account changes; one audit row is written in each
    organization the user belongs to. Raises InvalidInput (field `new_email`) for an address
    that is not one, or is already the account's. An address that belongs to another account
    gets the same answer and the same message: its confirmation refuses it.
    """
    new_email = _normalized(new_email)
    try:
        validate_email(new_email)
    except ValidationError:
        raise InvalidInput(
            _("Enter a valid email address, like name@company.com."), field="new_email"
        ) from None
    if new_email == user.email:
        raise InvalidInput(
            _("%(email)s is already your email. Enter the new address you want to use.")
            % {"email": new_email},
            field="new_email",
        )
    token = email_change_token(user=user, new_email=new_email)
    site_url = site_url.rstrip("/")
    context = {
        "site_name": urlsplit(site_url).netloc or site_url,
        "old_email": user.email,
        "new_email": new_email,
        "link": site_url + reverse("accounts:email_change_confirm", kwargs={"token": token}),
        "password_link": site_url + reverse("accounts:password_change"),
        "sessions_link": site_url + reverse("accounts:sessions"),
        "hours": _hours(settings.LEPTON_EMAIL_CHANGE_TIMEOUT),
    }
    with transaction.atomic():
        for membership in memberships_for_user(user=user):
            audit_record(
                organization=membership.organization,
                actor=user,
                action="user.email_change_request",
                target=user,
                data={"new_email": new_email},
            )
    link = _message("email_change", context, to=new_email)
    notice = _message("email_change_notice", context, to=user.email)
    get_connection().send_messages([link, notice])  # one SMTP session for both


def _message(template: str, context: dict, *, to: str) -> EmailMessage:
    subject = render_to_string(f"accounts/{template}_subject.txt", context)
    body = render_to_string(f"accounts/{template}_email.txt", context)
    return EmailMessage("".join(subject.splitlines()), body, None, [to])


def email_change_claim(*, user: User, token: str) -> EmailChangeClaim:
    """Read a confirmation link's token for the logged-in `user`, changing nothing.

    Raises EmailChangeRefused saying why the link cannot be used and what to do instead: it is
    not a link of ours (or was cut short), it expired, it was sent to another account, or the
    account's email or password changed since it was sent.
    """
    again = _("Ask for a new link on the Email page of your account.")
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.LEPTON_EMAIL_CHANGE_TIMEOUT)
    except signing.SignatureExpired:
        hours = _hours(settings.LEPTON_EMAIL_CHANGE_TIMEOUT)
        expired = ngettext(
            "This link has expired: links work for %(hours)d hour.",
            "This link has expired: links work for %(hours)d hours.",
            hours,
        ) % {"hours": hours}
        raise EmailChangeRefused(f"{expired} {again}") from None
    except signing.BadSignature:
        message = _(
            "This link is not valid; it may have been cut short when it was copied. Open it "
            "from the message again, whole."
        )
        raise EmailChangeRefused(f"{message} {again}") from None
    if not isinstance(payload, dict) or not {"u", "e", "s"} <= payload.keys():
        raise EmailChangeRefused(_("This link is not valid.") + " " + again)
    if payload["u"] != str(user.pk):
        raise EmailChangeRefused(
            _(
                "This link was sent for another account. Log out, open the link again and log "
                "in with the account that asked for the change."
            ),
            status_code=403,
            code="forbidden",
        )
    if not constant_time_compare(payload["s"], _account_state(user)):
        message = _(
            "This link does not work any more: the account's email or password changed since "
            "it was sent."
        )
        raise EmailChangeRefused(f"{message} {again}")
    return EmailChangeClaim(user=user, new_email=payload["e"])


def email_change_confirm(*, user: User, token: str) -> str:
    """Change `user`'s email to the address its confirmation link names; returns the address.

    Refused (EmailChangeRefused, see email_change_claim) for a link that cannot be used, and
    with Conflict (409, field `new_email`) when the address belongs to another account by now.
    The change voids every other link sent before it; one audit row is written in each
    organization the user belongs to, with the old and the new address.
    """
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        claim = email_change_claim(user=locked, token=token)
        taken = Conflict(
            _(
                "%(email)s already belongs to another account, so it cannot become this "
                "account's email. Log in with that account instead, or ask for a change to "
                "another address."
            )
            % {"email": claim.new_email},
            field="new_email",
        )
        if User.objects.filter(email=claim.new_email).exclude(pk=locked.pk).exists():
            raise taken
        old_email = locked.email
        locked.email = claim.new_email
        try:
            with transaction.atomic():
                locked.save(update_fields=["email", "username"])
        except IntegrityError:  # taken by a sign-up in the meantime
            raise taken from None
        for membership in memberships_for_user(user=locked):
            audit_record(
                organization=membership.organization,
                actor=locked,
                action="user.email_change",
                target=locked,
                data={"old_email": old_email, "new_email": claim.new_email},
            )
    user.email = user.username = locked.email
    return locked.email
