"""The change-email pages: ask for a change (a link goes to the new address), then confirm it
from that link. The work is in apps.accounts.email_change."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from apps.accounts import email_change as service
from apps.accounts.forms import EmailChangeForm
from apps.accounts.models import User
from apps.accounts.throttling import EMAIL_CHANGE, TooManyAttempts
from apps.core.errors import ServiceError

TEMPLATE = "accounts/email_change.html"


@login_required
def email_change(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)  # login_required
    form = EmailChangeForm(
        user, request.POST if request.method == "POST" else None, request=request
    )
    if request.method != "POST":
        return render(request, TEMPLATE, {"form": form})
    if not form.is_valid():
        throttled = form.throttled
        status = 429 if throttled else 400
        context = {"form": form, "throttled": throttled.message if throttled else None}
        response = render(request, TEMPLATE, context, status=status)
        if throttled:
            response["Retry-After"] = str(throttled.retry_after)
        return response
    new_email = form.cleaned_data["new_email"]
    try:
        EMAIL_CHANGE.reserve(request, account=user.email)
        service.email_change_request(
            user=user,
            new_email=new_email,
            site_url=request.build_absolute_uri("/"),
        )
    except ServiceError as exc:
        context = {"form": form, "error": exc.message, "error_field": exc.field}
        response = render(request, TEMPLATE, context, status=exc.status_code)
        if isinstance(exc, TooManyAttempts):
            response["Retry-After"] = str(exc.retry_after)
        return response
    messages.success(
        request,
        _(
            "A confirmation link has been sent to %(new)s. Your email stays %(old)s until the "
            "link is opened; a notice went to %(old)s too."
        )
        % {"new": new_email.strip().lower(), "old": user.email},
    )
    return redirect("accounts:email_change")


@login_required
def email_change_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the message: GET shows the change to confirm, POST makes it. A link
    scanner that opens the page changes nothing, and without a session it only sees the
    log-in form, which comes back here afterwards."""
    template = "accounts/email_change_confirm.html"
    user = cast(User, request.user)  # login_required
    try:
        if request.method == "POST":
            new_email = service.email_change_confirm(user=user, token=token)
        else:
            claim = service.email_change_claim(user=user, token=token)
            return render(request, template, {"new_email": claim.new_email})
    except ServiceError as exc:
        return render(request, template, {"refused": exc.message}, status=exc.status_code)
    messages.success(
        request,
        _("Your email is now %(email)s. Log in with it from now on.") % {"email": new_email},
    )
    return redirect("accounts:email_change")
