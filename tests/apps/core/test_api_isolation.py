"""Organization B's credentials on organization A's objects: 404, exactly like a missing id,
and nothing of A's changes. The routes are found by walking the URL configuration, so a new
route cannot escape; a route with no object to aim at fails the test until one is added here.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.core.models import TenantModel
from apps.core.scoping import tenant_scope
from apps.deployments.services import endpoint_create
from apps.tenants.team import invitation_create
from tests.conftest import PASSWORD, as_file, png_bytes, trained_model_version
from tests.support.routes import PAGE_OBJECTS

pytestmark = pytest.mark.django_db(transaction=False)

METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns: list, namespace: str | None = None, prefix: str = "") -> list[tuple]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace or namespace
            found += _walk(pattern.url_patterns, inner, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append((namespace, pattern, prefix + str(pattern.pattern)))
    return found


def api_routes() -> list[tuple[str, Any, str]]:
    return [
        (f"api:{p.name}", p, route)
        for ns, p, route in _walk(get_resolver().url_patterns)
        if ns == "api"
    ]


def page_routes() -> list[tuple[str, Any, str]]:
    return [
        (f"{ns}:{p.name}" if ns else p.name, p, route)
        for ns, p, route in _walk(get_resolver().url_patterns)
        if ns not in ("api", "admin") and "<uuid:pk>" in route
    ]


def methods_of(callback: Any) -> list[str]:
    actions = getattr(callback, "actions", None)
    if actions:
        return [m for m in actions if m in METHODS]
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is not None:
        return [m for m in METHODS if hasattr(view_class, m)]
    return ["get", "post"]  # function views: try both


def basename_of(name: str) -> str:
    """'api:dataset-version-items' -> 'dataset-version' (the router's basename)."""
    short = name.split(":", 1)[1]
    for suffix in (
        "-detail",
        "-list",
        "-items",
        "-train",
        "-evaluation",
        "-predict",
        "-health",
        "-download",
        "-thumbnail",
        "-image",
        "-versions",
        "-confirm",
        "-table",
        "-cancel",
        "-weights",
        "-leaderboard",
        "-resend",
    ):
        if short.endswith(suffix):
            return short[: -len(suffix)]
    return short


def snapshot(organization: Any) -> dict[str, list]:
    """Every row organization A owns, in every tenant table, as plain values."""
    data = {}
    for model in apps.get_models():
        if issubclass(model, TenantModel):
            rows = model.all_tenants.filter(organization=organization).order_by("pk").values()
            data[model._meta.label] = json.loads(json.dumps(list(rows), default=str))
    return data


@pytest.fixture
def world(tenant, ready_version):
    """Organization A with one object of every kind the API exposes."""
    model_version = trained_model_version(tenant, ready_version, epochs=1)
    endpoint = endpoint_create(
        organization=tenant.organization, user=tenant.user, model_version=model_version
    )
    with tenant_scope(tenant.organization):
        run = model_version.run
        objects = {
            "api-key": tenant.api_key,
            "dataset": ready_version.dataset,
            "dataset-version": ready_version,
            "dataset-item": ready_version.items.first(),
            "model": model_version.model_config,
            "run": run,
            "model-version": model_version,
            "endpoint": endpoint,
            "usage": None,
        }
    from apps.analytics.services import usage_record

    objects["usage"] = usage_record(
        organization=tenant.organization, endpoint=endpoint, status_code=200, latency_ms=1.0
    )
    objects["member"] = _second_member(tenant.organization)
    objects["invitation"] = invitation_create(
        organization=tenant.organization,
        actor=tenant.user,
        email="invited@acme.example",
        role="member",
        site_url="http://testserver/",
    )
    return objects


def _second_member(organization: Any) -> Any:
    from apps.accounts.models import User
    from apps.tenants.models import Membership

    user = User.objects.create_user(email="member@acme.example", password=PASSWORD)
    return Membership.objects.create(organization=organization, user=user, role="member")


#: routes no key may use (people manage keys, members and invitations): the walks call them
#: with the person's email and password over HTTP Basic
PEOPLE_ONLY_PREFIXES = ("api:api-key", "api:member", "api:invitation")


def credentials(name: str, who: Any) -> dict[str, str]:
    """`who`'s API key, or on the key routes (which refuse every key: keys are managed by
    people) their email and password."""
    if not name.startswith(PEOPLE_ONLY_PREFIXES):
        return who.auth
    token = base64.b64encode(f"{who.user.email}:{PASSWORD}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def body_for(method: str) -> dict:
    if method in ("get", "delete"):
        return {}
    if method == "post":
        return {"data": {"image": as_file(png_bytes())}}
    return {
        "data": json.dumps({"name": "hijacked", "is_active": False}),
        "content_type": "application/json",
    }


def test_it_finds_the_routes_it_walks():
    names = {name for name, _, _ in api_routes()}
    assert {"api:dataset-detail", "api:endpoint-predict", "api:run-evaluation"} <= names
    assert len(names) > 15


def test_it_answers_404_for_another_organizations_objects_on_every_api_route(
    client, tenant, outsider, world
):
    before = snapshot(tenant.organization)
    failures, tried = [], 0
    for name, pattern, route in api_routes():
        if "<uuid:pk>" not in route:
            continue
        target = world.get(basename_of(name), "missing")
        if target == "missing":
            failures.append(f"{name}: no object of organization A to aim at; add it to `world`")
            continue
        url = reverse(name, kwargs={"pk": target.pk})
        for method in methods_of(pattern.callback):
            auth = credentials(name, outsider)
            response = getattr(client, method)(url, **body_for(method), **auth)
            tried += 1
            if response.status_code != 404:
                failures.append(f"{method.upper()} {url} ({name}) -> {response.status_code}")
    assert not failures, "\n".join(failures)
    assert tried >= 12  # the walk really reached the routes
    assert snapshot(tenant.organization) == before


def test_it_answers_404_to_a_logged_in_outsider_on_every_api_route(client, tenant, outsider, world):
    client.force_login(outsider.user)
    failures = []
    for name, pattern, route in api_routes():
        if "<uuid:pk>" not in route:
            continue
        url = reverse(name, kwargs={"pk": world[basename_of(name)].pk})
        for method in methods_of(pattern.callback):
            # The test client skips CSRF checks, so unsafe methods reach the tenant lookup too.
            response = getattr(client, method)(url, **body_for(method))
            if response.status_code != 404:
                failures.append(f"{method.upper()} {url} -> {response.status_code}")
    assert not failures, "\n".join(failures)


def test_it_never_lists_another_organizations_objects(client, tenant, outsider, world):
    ids = {str(obj.pk) for obj in world.values()} | {str(tenant.organization.pk)}
    leaks = []
    for name, pattern, route in api_routes():
        if "<" in route or "get" not in methods_of(pattern.callback) or name == "api:schema":
            continue
        response = client.get(reverse(name), **credentials(name, outsider))
        assert response.status_code == 200, (name, response.status_code)
        text = response.content.decode()
        leaks += [f"{name} shows {i}" for i in ids if i in text]
    assert not leaks, "\n".join(leaks)


def test_it_refuses_references_to_another_organizations_objects(client, tenant, outsider, world):
    before = snapshot(tenant.organization)
    created = client.post(
        "/api/v1/models/",
        {"name": "x", "template": "leptonnet", "dataset_version": str(world["dataset-version"].pk)},
        content_type="application/json",
        **outsider.auth,
    )
    assert created.status_code == 400
    assert "in your organization" in created.json()["error"]["message"]
    deployed = client.post(
        "/api/v1/endpoints/",
        {"model_version": str(world["model-version"].pk)},
        content_type="application/json",
        **outsider.auth,
    )
    assert deployed.status_code == 400
    assert snapshot(tenant.organization) == before


def test_it_answers_404_for_another_organizations_objects_on_every_page(
    client, tenant, outsider, world
):
    client.force_login(outsider.user)
    by_app = PAGE_OBJECTS
    before = snapshot(tenant.organization)
    failures = []
    routes = page_routes()
    assert routes
    for name, _pattern, _route in routes:
        if name not in by_app:
            failures.append(f"{name}: no object to aim at; add it to by_app")
            continue
        url = reverse(name, kwargs={"pk": world[by_app[name]].pk})
        for method in ("get", "post"):
            status = getattr(client, method)(url).status_code
            if status not in (404, 405):
                failures.append(f"{method.upper()} {url} -> {status}")
    assert not failures, "\n".join(failures)
    assert snapshot(tenant.organization) == before
