from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
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


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """The change-password form: a wrong current password counts as a failed log-in of the
    account, so a borrowed session cannot be used to guess the password."""

    throttled: TooManyAttempts | None = None

    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        try:
            LOGIN.reserve(self.request, account=self.user.email)
        except TooManyAttempts as exc:
            self.throttled = exc
            raise ValidationError(exc.message, code="throttled") from None
        old_password = super().clean_old_password()
        LOGIN.release(self.request, account=self.user.email)
        return old_password


class EmailChangeForm(forms.Form):
    """The change-email form: the new address and the current password. A wrong password counts
    as a failed log-in of the account, as on the change-password form."""

    new_email = forms.EmailField(
        label=_("New email"),
        max_length=254,
        error_messages={"invalid": _("Enter a valid email address, like name@company.com.")},
    )
    password = forms.CharField(label=_("Current password"), strip=False)

    throttled: TooManyAttempts | None = None

    def __init__(self, user: Any, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.request = request

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        try:
            LOGIN.reserve(self.request, account=self.user.email)
        except TooManyAttempts as exc:
            self.throttled = exc
            raise ValidationError(exc.message, code="throttled") from None
        if not self.user.check_password(password):
            raise ValidationError(
                _("Your password was entered incorrectly. Enter the one you log in with."),
                code="password_incorrect",
            )
        LOGIN.release(self.request, account=self.user.email)
        return password
