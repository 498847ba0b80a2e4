"""The published OpenAPI schema is valid, warning-free and covers every API route."""

import pytest
from django.core.management import call_command

from tests.apps.core.test_api_isolation import api_routes


def test_it_generates_a_valid_schema_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "ApiKey" in out.read_text()


@pytest.mark.django_db
def test_it_serves_the_schema_with_every_route(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for name, _pattern, route in api_routes():
        if name == "api:schema":
            continue
        expected = "/api/v1/" + route.split("api/v1/", 1)[1].replace("<uuid:pk>", "{id}")
        assert expected in paths, (name, expected, sorted(paths))
