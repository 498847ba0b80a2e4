"""API keys: created with a password or a session, shown once, stored as a hash, revocable."""

from __future__ import annotations

import base64
import re

from apps.accounts.models import ApiKey, api_key_matches
from apps.audit.models import AuditEvent
from tests.conftest import PASSWORD

KEYS = "/api/v1/api-keys/"
ORGANIZATION = "/api/v1/organization/"


def basic(email: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def bearer(raw_key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def assert_not_stored(raw: str) -> None:
    """No column of any key or audit row holds the raw key or its secret part."""
    secret = raw.split("_", 2)[2]
    for model in (ApiKey, AuditEvent):
        for row in model.all_tenants.values():
            for value in row.values():
                assert secret not in str(value), f"{model.__name__} stores the key"


def test_it_creates_a_key_with_email_and_password(client, tenant, outsider):
    r = client.post(KEYS, {"name": "shop backend"}, **basic(tenant.user.email, PASSWORD))
    assert r.status_code == 201, r.content
    body = r.json()
    raw = body["key"]

    key = ApiKey.all_tenants.get(pk=body["id"])
    assert key.organization == tenant.organization
    assert key.created_by == tenant.user
    assert key.name == body["name"] == "shop backend"
    assert raw.startswith(f"lp_{key.prefix}_")
    assert api_key_matches(key.key_hash, raw)
    assert key.key_hash != raw
    assert_not_stored(raw)


def test_it_takes_the_email_in_any_case_for_basic_auth(client, tenant):
    r = client.post(KEYS, {"name": "ci"}, **basic(tenant.user.email.upper(), PASSWORD))
    assert r.status_code == 201, r.content
    assert ApiKey.all_tenants.get(pk=r.json()["id"]).created_by == tenant.user


def test_it_refuses_basic_auth_with_a_wrong_password(client, tenant):
    r = client.post(KEYS, {"name": "x"}, **basic(tenant.user.email, "not-the-password"))
    assert r.status_code == 401
    assert ApiKey.all_tenants.filter(organization=tenant.organization).count() == 1


def test_it_creates_a_key_from_a_logged_in_session(client, tenant, outsider):
    client.force_login(tenant.user)
    r = client.post(KEYS, {"name": "from the browser"}, content_type="application/json")
    assert r.status_code == 201, r.content
    raw = r.json()["key"]
    key = ApiKey.all_tenants.get(pk=r.json()["id"])
    assert key.organization == tenant.organization
    assert api_key_matches(key.key_hash, raw)
    assert_not_stored(raw)


def test_it_refuses_a_key_without_a_name(client, tenant):
    client.force_login(tenant.user)
    r = client.post(KEYS, {"name": "   "}, content_type="application/json")
    assert r.status_code == 400
    assert "name" in r.json()["error"]["fields"]


def test_the_raw_key_is_shown_once_and_never_listed(client, tenant, outsider):
    client.force_login(tenant.user)
    raw = client.post(KEYS, {"name": "once"}, content_type="application/json").json()["key"]
    secret = raw.split("_", 2)[2]

    listing = client.get(KEYS)
    assert listing.status_code == 200
    # Both organizations have a key named "tests"; only this one's may be listed.
    assert sorted(item["name"] for item in listing.json()["results"]) == ["once", "tests"]
    assert secret not in listing.content.decode()
    assert tenant.raw_key.split("_", 2)[2] not in listing.content.decode()
    assert all("key" not in item for item in listing.json()["results"])

    detail = client.get(f"{KEYS}{tenant.api_key.pk}/")
    assert detail.status_code == 200
    assert "key" not in detail.json()
    assert tenant.raw_key.split("_", 2)[2] not in detail.content.decode()


def test_a_key_acts_for_its_own_organization(client, tenant, outsider):
    for who in (tenant, outsider):
        r = client.get(ORGANIZATION, **who.auth)
        assert r.status_code == 200
        assert r.json()["id"] == str(who.organization.pk)
        assert r.json()["name"] == who.organization.name

    tenant.api_key.refresh_from_db()
    assert tenant.api_key.last_used_at is not None


def test_a_revoked_key_is_refused_with_a_clear_message(client, tenant, outsider):
    r = client.delete(f"{KEYS}{tenant.api_key.pk}/", **basic(tenant.user.email, PASSWORD))
    assert r.status_code == 204
    tenant.api_key.refresh_from_db()
    assert tenant.api_key.revoked_at is not None
    assert AuditEvent.all_tenants.filter(
        organization=tenant.organization, action="api_key.revoke", target_id=str(tenant.api_key.pk)
    ).exists()

    r = client.get(ORGANIZATION, **tenant.auth)
    assert r.status_code == 401
    assert "revoked" in r.json()["error"]["message"]
    assert r["WWW-Authenticate"].startswith("Bearer")
    # The other organization's key is untouched.
    assert client.get(ORGANIZATION, **outsider.auth).status_code == 200


def test_a_wrong_secret_with_a_real_prefix_is_refused(client, tenant):
    prefix = tenant.api_key.prefix
    r = client.get(ORGANIZATION, **bearer(f"lp_{prefix}_{'A' * 43}"))
    assert r.status_code == 401
    assert "Invalid or revoked" in r.json()["error"]["message"]


def test_a_malformed_key_is_refused(client, tenant):
    for raw in ("hello", "lp_only-two", "xx_abc_def", tenant.raw_key + "_extra"):
        r = client.get(ORGANIZATION, **bearer(raw))
        assert r.status_code == 401, raw
        assert "Malformed API key" in r.json()["error"]["message"]


def test_no_key_at_all_is_refused(client, tenant):
    r = client.get(ORGANIZATION)
    assert r.status_code == 401
    assert "error" in r.json()


def test_another_organizations_owner_cannot_revoke_this_key(client, tenant, outsider):
    r = client.delete(f"{KEYS}{tenant.api_key.pk}/", **basic(outsider.user.email, PASSWORD))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    tenant.api_key.refresh_from_db()
    assert tenant.api_key.revoked_at is None
    assert client.get(ORGANIZATION, **tenant.auth).status_code == 200


def test_the_page_shows_a_new_key_once(client, tenant, outsider):
    client.force_login(tenant.user)
    # As the form sends it: all three scopes are ticked by default.
    form = {"name": "page key", "scopes": ["read", "write", "predict"]}
    r = client.post("/accounts/api-keys/", form)
    assert r.status_code == 302

    key = ApiKey.all_tenants.get(organization=tenant.organization, name="page key")
    page = client.get("/accounts/api-keys/").content.decode()
    shown = re.search(rf"lp_{key.prefix}_[A-Za-z0-9-]+", page)
    assert shown is not None
    assert api_key_matches(key.key_hash, shown.group(0))
    assert_not_stored(shown.group(0))

    again = client.get("/accounts/api-keys/").content.decode()
    assert shown.group(0) not in again
    assert f"lp_{key.prefix}_…" in again
    assert outsider.api_key.prefix not in again


def test_the_page_revokes_a_key(client, tenant, outsider):
    client.force_login(tenant.user)
    r = client.post(f"/accounts/api-keys/{tenant.api_key.pk}/revoke/")
    assert r.status_code == 302
    tenant.api_key.refresh_from_db()
    assert tenant.api_key.revoked_at is not None
    assert client.get(ORGANIZATION, **tenant.auth).status_code == 401


def test_the_page_cannot_revoke_another_organizations_key(client, tenant, outsider):
    client.force_login(tenant.user)
    r = client.post(f"/accounts/api-keys/{outsider.api_key.pk}/revoke/")
    assert r.status_code == 404
    outsider.api_key.refresh_from_db()
    assert outsider.api_key.revoked_at is None
