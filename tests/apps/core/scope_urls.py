"""Views that misbehave on purpose, for tests/apps/core/test_scope_lifecycle.py."""

from django.http import JsonResponse
from django.urls import path
from rest_framework.response import Response

from apps.core import scoping
from apps.core.api import TenantAPIView
from apps.core.permissions import READ
from apps.core.views import org_page


class Boom(RuntimeError):
    """An error no handler turns into a response: the request ends in a 500."""


class RaisingAPIView(TenantAPIView):
    def get(self, request):
        raise Boom("raised inside the tenant scope")


class ScopeAPIView(TenantAPIView):
    def get(self, request):
        return Response({"organization": str(scoping.get_active_organization().pk)})


@org_page()
def raising_page(request):
    raise Boom("raised inside a page's tenant scope")


def probe(request):
    """What scope a plain request sees when it starts."""
    organization = scoping.get_active_organization()
    return JsonResponse({"organization": None if organization is None else str(organization.pk)})


urlpatterns = [
    path("raise/api/", RaisingAPIView.as_view(), name="test-raise-api"),
    path("scope/api/", ScopeAPIView.as_view(), name="test-scope-api"),
    path("raise/page/", raising_page, name="test-raise-page"),
    path("probe/", probe),
]

#: what the permission table would say of these routes (tests add them while they run)
PERMISSIONS = {name: {"GET": READ} for name in ("test-raise-api", "test-scope-api")}
PERMISSIONS["test-raise-page"] = {"GET": READ}
