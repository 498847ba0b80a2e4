"""Keeps the sessions page's record of each logged-in session's last activity."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.accounts.sessions import user_session_touch


class SessionActivityMiddleware:
    """After AuthenticationMiddleware: notes the session's use once the view has run, so a
    log-in or password change made by that view (which change the session's key) is seen."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if hasattr(request, "user") and hasattr(request, "session"):
            user_session_touch(request=request)
        return response
