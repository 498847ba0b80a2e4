"""The Content-Security-Policy every response of the portal carries.

Pages load scripts and styles only from the portal's own static files (htmx comes from npm
through the same pipeline), so an injected ``<script>``, ``onclick=`` or ``style=`` does
nothing. Bars and meters are drawn with ``<progress>`` and SVG attributes, which need no
inline style; scripts may still set ``element.style`` (the CSSOM is not inline style).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

DEFAULT_POLICY: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}


def content_security_policy() -> str:
    """The header's value: DEFAULT_POLICY with settings.LEPTON_CSP's directives replacing it."""
    policy = DEFAULT_POLICY | getattr(settings, "LEPTON_CSP", {})
    return "; ".join(f"{name} {sources}" for name, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    """Adds the header to every response, static files included (it sits above whitenoise).

    A view that sets its own policy keeps it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
