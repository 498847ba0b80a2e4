"""Page plumbing: the decorator every tenant page uses, and helpers pages share."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from apps.core import scoping
from apps.core.errors import Forbidden, ServiceError, check_may_change
from apps.core.permissions import (
    NotInTable,
    may_change,
    owner_id,
    refusal_message,
    route_methods,
    rule_for,
)
from apps.tenants.models import Role
from apps.tenants.selectors import organization_for_request


def org_page(required_role: str | None = None) -> Callable:
    """Decorate a page view: login required, organization resolved, role checked, scope set.

    The role a page needs comes from the permission table (apps/core/permissions.py) for the
    route and method; `required_role` can only add a stricter floor. A route missing from the
    table is refused (403), a method it does not list answers 405. The view receives
    request.organization, request.role and request.permission_rule; a Forbidden raised by it
    (check_may_change_page) becomes a 403 page naming what is needed.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated and request.headers.get("HX-Request"):
                # A live fragment polled after the session ended: send the whole page to the
                # login form instead of swapping the login form into the fragment.
                return _htmx_login_redirect(request)
            return logged_in(request, *args, **kwargs)

        @login_required
        def logged_in(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            organization, role = organization_for_request(request)
            if organization is None or role is None:  # both or neither
                return render(request, "core/no_organization.html", status=403)
            if organization.is_suspended:
                context = {
                    "organization": organization,
                    "message": organization.suspension_message(),
                }
                return render(request, "core/suspended.html", context, status=403)
            route = getattr(request.resolver_match, "view_name", None)
            try:
                rule = rule_for(route, request.method or "GET")
            except NotInTable as exc:
                if exc.route_known and route is not None:
                    # Listed: the method is simply not one this page takes.
                    return HttpResponseNotAllowed(route_methods(route))
                return _forbidden(request, exc.message)
            for floor in (rule.role, required_role):
                if floor is not None and not Role.at_least(role, floor):
                    return _forbidden(request, refusal_message(needed=floor, role=role))
            request.organization = organization  # type: ignore[attr-defined]
            request.role = role  # type: ignore[attr-defined]
            request.permission_rule = rule  # type: ignore[attr-defined]
            with scoping.tenant_scope(organization):
                try:
                    return view(request, *args, **kwargs)
                except Forbidden as exc:
                    return _forbidden(request, exc.message)

        return wrapper

    return decorator


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "core/forbidden.html", {"message": message}, status=403)


def check_may_change_page(request: HttpRequest, obj: Any) -> None:
    """On a page with an "own" rule: refuse (Forbidden, a 403 page) a member acting on what
    someone else created, before the form is read. The service checks again."""
    rule = getattr(request, "permission_rule", None)
    if rule is None or not rule.own:
        return
    check_may_change(
        role=request.role,  # type: ignore[attr-defined]
        user=request.user,
        created_by_id=owner_id(obj),
        what=_("the %(kind)s '%(name)s'") % {"kind": obj._meta.verbose_name, "name": obj},
        action=_("change"),
    )


def can_change(request: HttpRequest, obj: Any) -> bool:
    """Whether the page should offer to change or delete `obj` (the `can_change` flag of
    templates): admins and owners always, members on what they created, viewers never."""
    return may_change(
        role=getattr(request, "role", None), user=request.user, created_by_id=owner_id(obj)
    )


def _htmx_login_redirect(request: HttpRequest) -> HttpResponse:
    from urllib.parse import urlsplit

    from django.conf import settings
    from django.contrib.auth.views import redirect_to_login

    page = urlsplit(request.headers.get("HX-Current-URL", "")).path or request.path
    response = HttpResponse(status=204)
    response["HX-Redirect"] = redirect_to_login(page, settings.LOGIN_URL)["Location"]
    return response


def render_with_error(
    request: HttpRequest, template: str, context: dict, error: ServiceError
) -> HttpResponse:
    """Re-render a form page with the service's message, keeping what was typed."""
    context = {**context, "error": error.message, "error_field": error.field}
    return render(request, template, context, status=error.status_code)


def parse_uuid(raw: Any) -> uuid.UUID | None:
    """A UUID from user input, or None when it is not one (instead of a 500 from the ORM)."""
    try:
        return uuid.UUID(str(raw))
    except (TypeError, ValueError):
        return None


def delete_on_confirm(
    request: HttpRequest,
    *,
    name: str,
    delete: Callable[[], str],
    back: HttpResponse,
    done: str,
) -> HttpResponse:
    """A delete form's POST (templates/core/_delete_card.html): `delete()` runs once `name`
    was typed in `confirm_name`, and its message shows on the `done` page; a wrong name or a
    refusal (ServiceError) shows on `back` instead, with nothing deleted."""
    from django.contrib import messages
    from django.utils.translation import gettext as _

    if request.POST.get("confirm_name", "").strip() != name.strip():
        messages.error(
            request,
            _("Type the name, %(name)s, exactly as shown to confirm the deletion.")
            % {"name": name},
        )
        return back
    try:
        message = delete()
    except ServiceError as exc:
        messages.error(request, exc.message)
        return back
    messages.success(request, message)
    return redirect(done)
