"""Inputs that never 500: NUL characters, JSON bodies that are not objects and values of the
wrong type get a 4xx in the documented shape, on every write route of the API and every page.

The routes are found by walking the URL configuration (as test_api_isolation does), so a new
route is covered without being listed. Run it on PostgreSQL too (DATABASE_URL): SQLite stores
a NUL where PostgreSQL refuses it with a DataError, which is what made these 500s.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.urls import get_resolver, reverse

from apps.core.inputs import json_nul_field
from tests.apps.core import test_api_isolation as isolation
from tests.apps.core.test_api_isolation import _walk, api_routes, basename_of, methods_of
from tests.conftest import as_file, png_bytes
from tests.support.routes import PAGE_OBJECTS

pytestmark = pytest.mark.django_db(transaction=False)

#: the fixture with one object of every kind the API exposes, of the caller's organization
world = isolation.world

NUL = "bad\x00value"
WRITES = ("post", "put", "patch")
#: the names the API's write routes read; each gets every wrong type in turn
FIELDS = (
    "name",
    "kind",
    "label",
    "labels",
    "relabel",
    "remove",
    "template",
    "dataset_version",
    "model_version",
    "is_active",
    "top_k",
    "target",
    "columns",
    "epochs",
    "base",
    "split",
    "description",
)
WRONG = (5, 1.5, True, None, ["x"], {"x": "y"}, [])
NOT_OBJECTS = ("[1, 2]", '"name"', "5", "null", "true")


def write_routes(world: dict) -> list[tuple[str, str, str]]:
    """(name, url, method) of every API route that takes a body."""
    found = []
    for name, pattern, route in api_routes():
        if "<uuid:pk>" in route:
            url = reverse(name, kwargs={"pk": world[basename_of(name)].pk})
        elif "<" in route:
            continue
        else:
            url = reverse(name)
        found += [(name, url, m) for m in methods_of(pattern.callback) if m in WRITES]
    return found


def page_urls(world: dict) -> list[tuple[str, str]]:
    found = []
    for namespace, pattern, route in _walk(get_resolver().url_patterns):
        if namespace in ("api", "admin"):
            continue
        name = f"{namespace}:{pattern.name}" if namespace else pattern.name
        if name == "accounts:logout":
            continue  # would end the session the walk uses; it takes no input
        if "<uuid:pk>" in route:
            found.append((name, reverse(name, kwargs={"pk": world[PAGE_OBJECTS[name]].pk})))
        elif "<" not in route:
            found.append((name, reverse(name)))
    return found


def assert_error_shape(response: Any, where: str, field: str | None = None) -> list[str]:
    """[] when `response` is a 4xx in the documented shape (naming `field`), else the problem."""
    if not 400 <= response.status_code < 500:
        return [f"{where} -> {response.status_code}"]
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return [f"{where} -> {response.status_code} without the error shape"]
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        return [f"{where} -> error without code and message: {error}"]
    named = [f for f in error.get("fields") or {} if f == field or f.startswith(f"{field}.")]
    if field is not None and not named:
        return [f"{where} -> {response.status_code} does not name '{field}': {error}"]
    return []


def test_it_names_the_json_path_holding_a_nul():
    assert json_nul_field({"name": "ok", "rows": [{"city": "a\x00"}]}) == "rows[0].city"
    assert json_nul_field({"a\x00": 1}) == "a\\0"
    assert json_nul_field(["x", "y\x00"]) == "body[1]"
    assert json_nul_field({"name": "fine", "n": 5, "x": None}) is None


def test_every_api_write_route_refuses_nul_in_query_json_and_form_fields(client, tenant, world):
    failures, tried = [], 0
    for name, url, method in write_routes(world):
        send = getattr(client, method)
        where = f"{method.upper()} {url} ({name})"
        r = send(f"{url}?label=bad%00value", **tenant.auth)
        failures += assert_error_shape(r, f"{where} ?label=NUL", "label")
        body = json.dumps({"name": NUL, "label": "fine"})
        r = send(url, body, content_type="application/json", **tenant.auth)
        failures += assert_error_shape(r, f"{where} JSON name=NUL", "name")
        if method == "post":
            r = send(url, {"name": NUL, "image": as_file(png_bytes())}, **tenant.auth)
            failures += assert_error_shape(r, f"{where} form name=NUL", "name")
        tried += 1
    assert not failures, "\n".join(failures)
    assert tried >= 10


def test_every_api_write_route_refuses_a_json_body_that_is_not_an_object(client, tenant, world):
    failures = []
    for name, url, method in write_routes(world):
        if name == "api:endpoint-predict":
            continue  # takes an array of rows (regressors); its own refusals are tested there
        for body in NOT_OBJECTS:
            r = getattr(client, method)(url, body, content_type="application/json", **tenant.auth)
            # The tenant views name the body; sign-up (a serializer's own check) and a route
            # that takes no JSON (415) answer in the same shape.
            failures += assert_error_shape(r, f"{method.upper()} {url} {body}")
            if r.status_code == 400 and name != "api:signup":
                failures += assert_error_shape(r, f"{method.upper()} {url} {body}", "body")
    assert not failures, "\n".join(failures)


def test_every_api_write_route_answers_wrong_types_without_a_500(client, tenant, world):
    client.raise_request_exception = False  # collect every 500, not just the first
    failures = []
    for _name, url, method in write_routes(world):
        for field in FIELDS:
            for value in WRONG:
                body = json.dumps({field: value})
                r = getattr(client, method)(
                    url, body, content_type="application/json", **tenant.auth
                )
                where = f"{method.upper()} {url} {body}"
                if r.status_code >= 400:
                    failures += assert_error_shape(r, where)
                elif r.status_code >= 500:
                    failures.append(f"{where} -> {r.status_code}")
    assert not failures, "\n".join(failures)


def test_a_name_that_is_not_text_is_refused_naming_it(client, tenant):
    r = client.post(
        "/api/v1/datasets/", {"name": ["shapes"]}, content_type="application/json", **tenant.auth
    )
    assert r.status_code == 400
    assert r.json()["error"]["fields"] == {"name": ["'name' must be text; this is a JSON array."]}


def test_relabel_values_with_nul_or_of_the_wrong_type_never_500(client, tenant, world):
    client.raise_request_exception = False
    url = reverse("api:dataset-versions", kwargs={"pk": world["dataset"].pk})
    item = str(world["dataset-item"].pk)
    failures = []
    for value in ("new\x00label", *WRONG):
        body = json.dumps({"relabel": {item: value}})
        r = client.post(url, body, content_type="application/json", **tenant.auth)
        failures += assert_error_shape(r, f"relabel {body}", "relabel")
        # The same as a multipart form field, where the object is JSON text.
        r = client.post(url, {"relabel": body[len('{"relabel": ') : -1]}, **tenant.auth)
        failures += assert_error_shape(r, f"relabel (form) {body}", "relabel")
    assert not failures, "\n".join(failures)


def test_a_body_it_cannot_parse_is_left_to_the_view_to_refuse(client, tenant, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    r = client.post(
        "/api/v1/datasets/", "x" * 2048, content_type="multipart/form-data", **tenant.auth
    )
    assert r.status_code == 400
    assert "boundary" in r.json()["error"]["message"].lower()
    client.force_login(tenant.user)
    r = client.post(
        "/datasets/", "name=" + "x" * 2048, content_type="application/x-www-form-urlencoded"
    )
    assert r.status_code == 400


def test_the_label_filter_refuses_nul_naming_it(client, tenant, world):
    url = reverse("api:dataset-version-items", kwargs={"pk": world["dataset-version"].pk})
    r = client.get(f"{url}?label=circle%00", **tenant.auth)
    assert r.status_code == 400
    assert r.json()["error"]["fields"] == {"label": [r.json()["error"]["message"]]}
    assert "'label'" in r.json()["error"]["message"]
    assert "NUL" in r.json()["error"]["message"]


def _form_fields(html: str) -> set[str]:
    return set(re.findall(r'<(?:input|textarea|select)[^>]*\bname="([^"]+)"', html)) - {
        "csrfmiddlewaretoken"
    }


def test_every_page_refuses_nul_in_its_query_and_in_each_of_its_form_fields(client, tenant, world):
    client.force_login(tenant.user)
    failures, forms = [], 0
    for name, url in page_urls(world):
        r = client.get(f"{url}?label=bad%00value&page=1%00")
        if r.status_code != 400 or b"NUL" not in r.content:
            failures.append(f"GET {url} ({name}) ?label=NUL -> {r.status_code}")
        page = client.get(url)
        html = "" if page.streaming or page.status_code != 200 else page.content.decode()
        fields = _form_fields(html)
        forms += bool(fields)
        for field in sorted(fields | {"name"}):
            r = client.post(url, {field: NUL})
            if r.status_code != 400 or field.encode() not in r.content:
                failures.append(f"POST {url} ({name}) {field}=NUL -> {r.status_code}")
    assert not failures, "\n".join(failures)
    assert forms >= 5  # the walk really found the forms
    # Nothing was deleted or changed by the refused posts: the objects are all still there.
    for key in ("dataset", "model", "endpoint", "api-key"):
        obj = world[key]
        assert type(obj).all_tenants.filter(pk=obj.pk).exists(), key
