"""Password pages: change it while logged in, or reset a forgotten one through an emailed link.

Django's auth views do the work (signed, expiring tokens; the session hash that logs out every
other session when the password changes); these subclasses add the portal's templates, its URL
names and the reset-request throttle.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import reverse_lazy
from django.utils.translation import gettext as _

from apps.accounts.forms import ThrottledPasswordChangeForm
from apps.accounts.sessions import user_sessions_end_others
from apps.accounts.throttling import PASSWORD_RESET, TooManyAttempts


class PasswordChangeView(auth_views.PasswordChangeView):
    """Asks for the current password (a wrong one counts as a failed log-in). Django's view
    keeps this session logged in (update_session_auth_hash); every other session of the user
    is ended at once."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change")
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return super().get_form_kwargs() | {"request": self.request}

    def form_invalid(self, form: ThrottledPasswordChangeForm) -> HttpResponse:  # type: ignore[override]
        throttled = form.throttled
        if throttled is None:
            return super().form_invalid(form)
        context = self.get_context_data(form=form, throttled=throttled.message)
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(throttled.retry_after)
        return response

    def form_valid(self, form: auth_forms.PasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        # Ended now, not at their next request, so the sessions page lists only this one.
        user_sessions_end_others(user=form.user, keep=self.request.session)
        messages.success(
            self.request,
            _("Your password was changed. Your other sessions were logged out."),
        )
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """The request page. Every well-formed request counts against the per-email and
    per-address budgets and gets the same answer, whether or not the email has an account."""

    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    @property
    def extra_email_context(self) -> dict[str, Any]:  # type: ignore[override]
        return {"hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)}

    def form_valid(self, form: auth_forms.PasswordResetForm) -> HttpResponse:
        try:
            PASSWORD_RESET.reserve(self.request, account=form.cleaned_data["email"])
        except TooManyAttempts as exc:
            context = self.get_context_data(form=form, throttled=exc.message)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: auth_forms.SetPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        # Whoever knew the old password is logged out everywhere.
        user_sessions_end_others(user=form.user, keep=self.request.session)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
