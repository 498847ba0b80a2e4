from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.accounts.throttling import LOGIN, TooManyAttempts


class ThrottledLoginMixin(AuthenticationForm):
    """Puts a log-in form under the log-in throttle: a spent budget refuses the attempt before
    the password is checked, a failure uses up one place, a success gives its place back."""

    #: set when the attempt was refused by the throttle, not checked
    throttled: TooManyAttempts | None = None

    def clean(self) -> dict[str, Any]:
        if self.request is None:
            return super().clean()
        account = self.cleaned_data.get("username") or ""
        try:
            LOGIN.reserve(self.request, account=account)
        except TooManyAttempts as exc:
            self.throttled = exc
            raise ValidationError(exc.message, code="throttled") from None
        cleaned = super().clean()
        LOGIN.release(self.request, account=account)
        return cleaned


class EmailAuthenticationForm(ThrottledLoginMixin):
    """The log-in page's form: the email as the user name."""

    username = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's log-in form, on the same budget as the page's: staff passwords are worth
    guessing too."""
