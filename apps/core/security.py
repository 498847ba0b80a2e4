"""The security headers every response of the portal carries: Content-Security-Policy and
Permissions-Policy (HSTS and the rest come from Django's SecurityMiddleware, see settings).

Pages load scripts and styles only from the portal's own static files (htmx comes from npm
through the same pipeline), so an injected ``<script>``, ``onclick=`` or ``style=`` does
nothing. Bars and meters are drawn with ``<progress>`` and SVG attributes, which need no
inline style; scripts may still set ``element.style`` (the CSSOM is not inline style).

The portal uses no powerful browser feature (camera, microphone, location, payment, USB...),
so the Permissions-Policy turns them all off, for its pages and any frame they could hold: an
injected script or a hostile embed cannot ask the user for them.
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

#: features denied to every origin; each name is one Chromium and Firefox recognise (an unknown
#: name makes the browser log an error on every page, which the browser tests would flag).
DENIED_FEATURES: tuple[str, ...] = (
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "encrypted-media",
    "geolocation",
    "gyroscope",
    "hid",
    "idle-detection",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "picture-in-picture",
    "publickey-credentials-get",
    "screen-wake-lock",
    "serial",
    "usb",
    "xr-spatial-tracking",
)


def content_security_policy() -> str:
    """The header's value: DEFAULT_POLICY with settings.LEPTON_CSP's directives replacing it."""
    policy = DEFAULT_POLICY | getattr(settings, "LEPTON_CSP", {})
    return "; ".join(f"{name} {sources}" for name, sources in policy.items())


def permissions_policy() -> str:
    """The header's value: every DENIED_FEATURES feature allowed to no origin (``name=()``),
    with settings.LEPTON_PERMISSIONS_POLICY's allow-lists replacing those it names."""
    policy = dict.fromkeys(DENIED_FEATURES, "()") | getattr(
        settings, "LEPTON_PERMISSIONS_POLICY", {}
    )
    return ", ".join(f"{name}={allowed}" for name, allowed in policy.items())


class SecurityHeadersMiddleware:
    """Adds both headers to every response, static files included (it sits above whitenoise).

    A view that sets its own value of either header keeps it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.headers = {
            "Content-Security-Policy": content_security_policy(),
            "Permissions-Policy": permissions_policy(),
        }

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        return response
