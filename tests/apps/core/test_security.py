"""The Content-Security-Policy and Permissions-Policy headers, on every kind of response the
portal gives, and the third-party JavaScript the CSP allows: htmx from npm, served by the
portal's own static pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from apps.core.security import content_security_policy, permissions_policy

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}


#: powerful features the portal never uses: no origin may use them
DENIED = ("camera", "microphone", "geolocation", "payment", "usb", "serial", "hid", "midi")


def directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def features(header: str) -> dict[str, str]:
    return dict(part.strip().split("=", 1) for part in header.split(","))


def test_the_policy_allows_nothing_inline_and_no_other_origin():
    policy = directives(content_security_policy())
    assert policy.items() >= POLICY.items()
    assert "unsafe" not in content_security_policy()


@pytest.mark.parametrize(
    "url",
    [
        "/accounts/login/",  # a page
        "/",  # a redirect
        "/api/v1/templates/",  # the API, refused without credentials
        "/no/such/page/",  # a 404
        "/admin/login/",  # the Django admin
        "/static/css/app.css",  # a static file, served by whitenoise
    ],
)
@pytest.mark.django_db
def test_it_is_on_every_response(client: Client, url: str):
    response = client.get(url)
    assert directives(response["Content-Security-Policy"]).items() >= POLICY.items()
    assert all(features(response["Permissions-Policy"])[name] == "()" for name in DENIED)


@pytest.mark.django_db
def test_it_is_on_a_signed_in_page(client: Client, tenant):
    client.force_login(tenant.user)
    response = client.get("/models/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == content_security_policy()
    assert response["Permissions-Policy"] == permissions_policy()


def test_permissions_policy_denies_every_powerful_feature_to_every_origin():
    policy = features(permissions_policy())
    assert set(DENIED) <= set(policy)
    assert set(policy.values()) == {"()"}


def test_a_setting_may_allow_a_feature_again(settings):
    settings.LEPTON_PERMISSIONS_POLICY = {"camera": "(self)"}
    policy = features(permissions_policy())
    assert policy["camera"] == "(self)" and policy["microphone"] == "()"


def test_htmx_comes_from_npm_at_the_locked_version():
    """`make install` runs npm ci; a missing node_modules fails here, not in a browser."""
    root = Path(settings.BASE_DIR)
    wanted = json.loads((root / "package.json").read_text())["dependencies"]["htmx.org"]
    lock = json.loads((root / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/htmx.org"]["version"] == wanted
    found = finders.find("vendor/htmx/htmx.min.js")
    assert found, "node_modules/htmx.org is missing: run `make install` (npm ci)"
    installed = json.loads((root / "node_modules/htmx.org/package.json").read_text())
    assert installed["version"] == wanted
    assert Path(found).resolve().is_relative_to((root / "node_modules").resolve())
    assert not (root / "static" / "vendor").exists()  # never copied into static/ by hand
