"""Sign-up, log-in/out, sessions and API key pages."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from apps.accounts.forms import EmailAuthenticationForm
from apps.accounts.models import ALL_SCOPES, Scope
from apps.accounts.services import (
    api_key_create,
    api_key_revoke,
    api_keys_visible,
    user_signup,
)
from apps.accounts.sessions import SESSION_ROW, user_sessions_active, user_sessions_end_others
from apps.accounts.throttling import SIGNUP, TooManyAttempts
from apps.core.errors import InvalidInput, ServiceError
from apps.core.views import org_page, render_with_error

NEW_KEY_SESSION = "new_api_key"


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    context = {"values": request.POST if request.method == "POST" else {}}
    if request.method == "POST":
        try:
            SIGNUP.reserve(request, account=request.POST.get("email", ""))
            user, _organization = user_signup(
                email=request.POST.get("email", ""),
                password=request.POST.get("password", ""),
                organization_name=request.POST.get("organization_name", ""),
            )
        except ServiceError as exc:
            return _with_retry_after(
                render_with_error(request, "accounts/signup.html", context, exc), exc
            )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! Your organization is ready."))
        return redirect("home")
    return render(request, "accounts/signup.html", context)


def _with_retry_after(response: HttpResponse, error: Exception | None) -> HttpResponse:
    if isinstance(error, TooManyAttempts):
        response["Retry-After"] = str(error.retry_after)
    return response


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: EmailAuthenticationForm) -> HttpResponse:  # type: ignore[override]
        if form.throttled is None:
            return super().form_invalid(form)
        context = self.get_context_data(form=form, throttled=form.throttled.message)
        response = self.render_to_response(context, status=429)
        return _with_retry_after(response, form.throttled)


class LogoutView(auth_views.LogoutView):
    pass


def _expiry_from_form(value: str) -> datetime | None:
    """The page's date field: the key stops working at the start of that day, in the person's
    time zone."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            _("Enter the expiry as a date, like 2030-12-31, or leave it empty."),
            field="expires_on",
        ) from None
    return timezone.make_aware(datetime.combine(day, time.min))


def _page_context(request: HttpRequest) -> dict[str, Any]:
    from apps.deployments.models import Endpoint

    keys = api_keys_visible(
        organization=request.organization,  # type: ignore[attr-defined]
        user=request.user,
        role=request.role,  # type: ignore[attr-defined]
    )
    endpoints = list(Endpoint.objects.order_by("name"))
    names = {str(endpoint.pk): endpoint.name for endpoint in endpoints}
    for key in keys:
        key.endpoint_names = [names.get(pk, pk) for pk in key.endpoint_ids]
    return {
        "keys": keys,
        "endpoints": endpoints,
        "scope_choices": Scope.choices,
        "values": {},
        "chosen_scopes": ALL_SCOPES,
        "chosen_endpoints": [],
    }


@org_page()
def api_keys(request: HttpRequest) -> HttpResponse:
    context = _page_context(request)
    if request.method == "POST":
        try:
            _key, raw = api_key_create(
                organization=request.organization,  # type: ignore[attr-defined]
                user=request.user,
                name=request.POST.get("name", ""),
                scopes=request.POST.getlist("scopes"),
                endpoint_ids=request.POST.getlist("endpoints"),
                expires_at=_expiry_from_form(request.POST.get("expires_on", "")),
            )
        except ServiceError as exc:
            context["values"] = request.POST
            context["chosen_scopes"] = request.POST.getlist("scopes")
            context["chosen_endpoints"] = request.POST.getlist("endpoints")
            return render_with_error(request, "accounts/api_keys.html", context, exc)
        # Shown once, on the next page view, then gone from the session.
        request.session[NEW_KEY_SESSION] = raw
        return redirect("accounts:api_keys")
    context["new_key"] = request.session.pop(NEW_KEY_SESSION, None)
    return render(request, "accounts/api_keys.html", context)


@require_POST
@org_page()
def api_key_revoke_view(request: HttpRequest, pk: str) -> HttpResponse:
    # Members may revoke only their own keys: another member's is absent, as it is from the list.
    visible = api_keys_visible(
        organization=request.organization,  # type: ignore[attr-defined]
        user=request.user,
        role=request.role,  # type: ignore[attr-defined]
    )
    key = get_object_or_404(visible, pk=pk)
    api_key_revoke(key=key, actor=request.user)
    messages.success(request, _("The key “%(name)s” was revoked.") % {"name": key.name})
    return redirect("accounts:api_keys")


@login_required
def sessions(request: HttpRequest) -> HttpResponse:
    rows = user_sessions_active(user=request.user)
    current = request.session.get(SESSION_ROW)
    listed = [(row, str(row.pk) == current) for row in rows]
    return render(request, "accounts/sessions.html", {"sessions": listed})


@require_POST
@login_required
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    ended = user_sessions_end_others(user=request.user, keep=request.session)
    messages.success(
        request,
        ngettext(
            "%(count)d other session was logged out.",
            "%(count)d other sessions were logged out.",
            ended,
        )
        % {"count": ended},
    )
    return redirect("accounts:sessions")
