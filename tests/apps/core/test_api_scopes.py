"""Every API route x method with a key of each single scope: 403 naming the scope exactly where
the key lacks it, never a 500. The routes are found by walking the URL configuration (as in
test_api_isolation), so a new route is checked the day it is added; what it needs is written
here, independently of the views, so a view that declares the wrong scope fails."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from apps.accounts.services import api_key_create
from tests.apps.core.test_api_isolation import api_routes, body_for, methods_of

pytestmark = pytest.mark.django_db(transaction=False)

SCOPES = ("read", "write", "predict")
#: routes no key may use: keys, members and invitations are managed by people
PEOPLE_ONLY = (
    "api:api-key-list",
    "api:api-key-detail",
    "api:member-list",
    "api:member-detail",
    "api:invitation-list",
    "api:invitation-detail",
    "api:invitation-resend",
)
#: routes open to anyone, keys or not (sign-up, the schema)
OPEN = ("api:signup", "api:schema")


def needed(name: str, method: str) -> str | None:
    """The scope a key needs on `name` with `method`; None where a key's scope does not matter."""
    if name in OPEN:
        return None
    if name == "api:endpoint-predict":
        return "predict"
    return "read" if method == "get" else "write"


def test_it_knows_every_route_it_walks():
    names = {name for name, _, _ in api_routes()}
    assert {"api:endpoint-predict", "api:dataset-detail", *PEOPLE_ONLY, *OPEN} <= names


def test_each_single_scope_key_is_refused_exactly_where_its_scope_is_missing(
    client, tenant, outsider
):
    keys = {
        scope: api_key_create(
            organization=tenant.organization, user=tenant.user, name=scope, scopes=[scope]
        )[1]
        for scope in SCOPES
    }
    failures, tried = [], 0
    for name, pattern, route in api_routes():
        # A fresh id: the scope is checked before the object is looked up, and nothing changes.
        url = reverse(name, kwargs={"pk": uuid.uuid4()} if "<uuid:pk>" in route else {})
        for method in methods_of(pattern.callback):
            for scope, raw in keys.items():
                headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
                response = getattr(client, method)(url, **body_for(method), **headers)
                tried += 1
                status = response.status_code
                what = f"{method.upper()} {url} ({name}) with a {scope} key -> {status}"
                if status >= 500:
                    failures.append(what)
                    continue
                if name in PEOPLE_ONLY:
                    message = response.json()["error"]["message"] if status == 403 else ""
                    if not message.startswith("API keys cannot manage"):
                        failures.append(f"{what}: keys must not manage keys or members")
                    continue
                scope_needed = needed(name, method)
                if scope_needed is None or scope_needed == scope:
                    if status in (401, 403):
                        failures.append(f"{what}: refused, but {scope} is the scope it needs")
                    continue
                message = response.json()["error"]["message"] if status == 403 else ""
                if not message.startswith(f"This key lacks the {scope_needed} scope"):
                    failures.append(f"{what}: expected 403 naming the {scope_needed} scope")
    assert not failures, "\n".join(failures)
    assert tried >= 3 * 25  # the walk really reached the routes
