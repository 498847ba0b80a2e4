from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.accounts.throttling import LOGIN, TooManyAttempts


class EmailAuthenticationForm(AuthenticationForm):
    """Django's log-in form with the email as the user name, under the log-in throttle."""

    username = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    #: set when the attempt was refused by the throttle, not checked
    throttled: TooManyAttempts | None = None

    def clean(self) -> dict[str, Any]:
        account = self.cleaned_data.get("username") or ""
        if self.request is None:
            return super().clean()
        try:
            LOGIN.reserve(self.request, account=account)
        except TooManyAttempts as exc:
            self.throttled = exc
            raise ValidationError(exc.message, code="throttled") from None
        cleaned = super().clean()
        # Only failures use up the budget; a successful log-in gives its place back.
        LOGIN.release(self.request, account=account)
        return cleaned
