"""Request middleware of the core: every request starts and ends with no tenant scope."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.core import scoping


class TenantScopeMiddleware:
    """The outermost guard of the scope's lifecycle for web requests.

    Views set the organization (apps.core.api, apps.core.views.org_page); whatever they do,
    including raising an error that becomes a 500, the next request on this thread starts with
    no organization. A response is fully rendered by the time it leaves this middleware's
    `get_response`, so no template or serializer runs outside the request's scope.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with scoping.unscoped_entry(f"request {request.method} {request.path}"):
            return self.get_response(request)
