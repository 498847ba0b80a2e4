"""The header's organization switcher, and the page that creates another organization.

Pages act for the organization chosen in the session (apps.tenants.selectors.SESSION_KEY);
API keys always act for their own and never read it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.errors import ServiceError
from apps.core.views import parse_uuid, render_with_error
from apps.tenants.models import Region
from apps.tenants.selectors import SESSION_KEY, membership_for_switch
from apps.tenants.services import organization_create


@require_POST
@login_required
def organization_switch(request: HttpRequest) -> HttpResponse:
    """Act for another organization the user belongs to, then go back to the section they were
    in. Not a member, an inactive organization and an unknown id answer the same 404."""
    organization_id = parse_uuid(request.POST.get("organization"))
    if organization_id is None:
        message = _(
            "Choose the organization to switch to from the menu in the header; "
            "this request named none, or not by its id."
        )
        return render(request, "tenants/switch_refused.html", {"message": message}, status=400)
    membership = membership_for_switch(user=request.user, organization_id=organization_id)
    if membership is None:
        message = _(
            "No organization of yours has this id. Choose one from the menu in the header, or "
            "ask an owner of the organization to invite you."
        )
        return render(request, "tenants/switch_refused.html", {"message": message}, status=404)
    request.session[SESSION_KEY] = str(membership.organization_id)
    messages.success(
        request,
        _("You are now working in %(name)s.") % {"name": membership.organization.name},
    )
    return redirect(section_after_switch(request, request.POST.get("next", "")))


def section_after_switch(request: HttpRequest, target: str) -> str:
    """Where to land after switching: `target` if it is a page of this site with no object in
    its address, else the nearest such page above it (/datasets/<id>/gallery/ -> /datasets/),
    since the previous organization's objects answer 404 in the new one. Another host, or an
    address that resolves to nothing, lands on the home page."""
    home = reverse("home")
    if not target or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return home
    path = urlsplit(target).path
    switch = reverse("accounts:organization_switch")
    while path.startswith("/") and path not in ("/", switch):
        try:
            match = resolve(path)
        except Resolver404:
            match = None
        if match is not None and not match.kwargs and not match.args:
            return path
        path = path.rstrip("/").rsplit("/", 1)[0] + "/"
    return home


@login_required
def organization_new(request: HttpRequest) -> HttpResponse:
    """Create another organization: its creator becomes its owner and works in it at once."""
    context: dict = {"regions": Region.choices, "values": {}}
    if request.method == "POST":
        try:
            organization = organization_create(
                name=request.POST.get("name", ""),
                owner=request.user,
                region=request.POST.get("region") or None,
            )
        except ServiceError as exc:
            context["values"] = request.POST
            return render_with_error(request, "tenants/organization_new.html", context, exc)
        request.session[SESSION_KEY] = str(organization.pk)
        messages.success(
            request,
            _("%(name)s is ready and you are its owner; you are now working in it.")
            % {"name": organization.name},
        )
        return redirect("home")
    return render(request, "tenants/organization_new.html", context)
