"""The tenant scope fails closed on every path, errors included: API views, pages and tasks."""

import logging

import pytest
from celery import shared_task
from django.test import Client
from django.urls import resolve
from rest_framework.test import APIRequestFactory

from apps.core import scoping
from apps.core.scoping import get_active_organization, tenant_scope
from tests.apps.core import scope_urls
from tests.apps.core.scope_urls import Boom, RaisingAPIView

pytestmark = pytest.mark.urls("tests.apps.core.scope_urls")


@pytest.fixture(autouse=True)
def permitted(monkeypatch):
    """The test routes in the permission table, which refuses routes it does not list."""
    from apps.core import permissions

    for name, rules in scope_urls.PERMISSIONS.items():
        monkeypatch.setitem(permissions.PERMISSIONS, name, rules)


@pytest.fixture
def raw_client():
    """A client that returns the 500 response instead of re-raising the view's error."""
    return Client(raise_request_exception=False)


def test_it_leaves_no_scope_after_an_api_view_raises(tenant):
    # Called without the middleware: the base view's own finally must reset the scope.
    request = APIRequestFactory().get(
        "/raise/api/", HTTP_AUTHORIZATION=tenant.auth["HTTP_AUTHORIZATION"]
    )
    request.resolver_match = resolve("/raise/api/")  # as the URL resolver sets it
    with pytest.raises(Boom):
        RaisingAPIView.as_view()(request)
    assert get_active_organization() is None


def test_a_request_after_an_api_500_on_the_same_thread_sees_no_scope(raw_client, tenant):
    assert raw_client.get("/raise/api/", **tenant.auth).status_code == 500
    assert get_active_organization() is None
    assert raw_client.get("/probe/").json() == {"organization": None}


def test_a_request_after_a_page_500_sees_no_scope(raw_client, tenant):
    from tests.conftest import PASSWORD

    assert raw_client.login(email=tenant.user.email, password=PASSWORD)
    assert raw_client.get("/raise/page/").status_code == 500
    assert get_active_organization() is None
    assert raw_client.get("/probe/").json() == {"organization": None}


def test_a_request_never_inherits_a_leaked_scope(raw_client, tenant, outsider, caplog):
    token = scoping.activate(outsider.organization)  # earlier code on this thread forgot it
    try:
        with caplog.at_level(logging.ERROR, logger="apps.core.scoping"):
            assert raw_client.get("/probe/").json() == {"organization": None}
            body = raw_client.get("/scope/api/", **tenant.auth).json()
        assert body == {"organization": str(tenant.organization.pk)}
        assert "started with a tenant scope left active" in caplog.text
    finally:
        scoping.deactivate(token)


@shared_task(name="tests.scope_lifecycle.raising_task")
def raising_task(organization_id: str) -> None:
    from apps.tenants.models import Organization

    with tenant_scope(Organization.objects.get(pk=organization_id)):
        scoping.activate(Organization.objects.get(pk=organization_id))  # leaks on purpose
        raise Boom("raised inside a task's tenant scope")


@shared_task(name="tests.scope_lifecycle.probe_task")
def probe_task() -> str | None:
    organization = get_active_organization()
    return None if organization is None else str(organization.pk)


def test_a_task_that_raises_leaves_no_scope(tenant):
    result = raising_task.apply(args=[str(tenant.organization.pk)])
    assert isinstance(result.result, Boom)
    assert get_active_organization() is None
    assert probe_task.apply().result is None


def test_a_task_never_inherits_a_leaked_scope(tenant):
    token = scoping.activate(tenant.organization)
    try:
        assert probe_task.apply().result is None
    finally:
        scoping.deactivate(token)
