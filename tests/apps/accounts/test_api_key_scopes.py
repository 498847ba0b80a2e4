"""API keys with scopes, an endpoint list and an expiry, managed only by people."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import uuid
from datetime import timedelta

from django.apps import apps as django_apps
from django.utils import timezone

from apps.accounts.models import ApiKey, api_key_matches
from apps.accounts.services import api_key_create
from apps.tenants.models import Membership, Role
from tests.conftest import PASSWORD

KEYS = "/api/v1/api-keys/"
ORGANIZATION = "/api/v1/organization/"


def basic(email: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def bearer(raw_key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def key_with(tenant, **kwargs):
    return api_key_create(organization=tenant.organization, user=tenant.user, name="k", **kwargs)


def join_as(tenant, email: str, role: str):
    from apps.accounts.models import User

    user = User.objects.create_user(email=email, password=PASSWORD)
    Membership.objects.create(organization=tenant.organization, user=user, role=role)
    return user


def test_a_predict_only_key_cannot_delete_a_dataset(client, tenant, ready_version, outsider):
    _key, raw = key_with(tenant, scopes=["predict"])
    r = client.delete(f"/api/v1/datasets/{ready_version.dataset_id}/", **bearer(raw))
    assert r.status_code == 403
    message = r.json()["error"]["message"]
    assert message.startswith("This key lacks the write scope; it has predict.")
    assert "API keys page" in message
    still = client.get(f"/api/v1/datasets/{ready_version.dataset_id}/", **tenant.auth)
    assert still.status_code == 200


def test_a_key_made_without_scopes_has_all_three(client, tenant):
    r = client.post(KEYS, {"name": "old style"}, **basic(tenant.user.email))
    assert r.status_code == 201, r.content
    assert r.json()["scopes"] == ["read", "write", "predict"]
    assert r.json()["endpoints"] == []
    assert r.json()["expires_at"] is None
    assert r.json()["created_by"] == tenant.user.email


def test_it_creates_a_key_with_scopes_endpoints_and_expiry(client, tenant):
    endpoint_id = str(uuid.uuid4())
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    r = client.post(
        KEYS,
        {"name": "shop", "scopes": ["predict", "read"], "expires_at": expires.isoformat()},
        content_type="application/json",
        **basic(tenant.user.email),
    )
    assert r.status_code == 201, r.content
    key = ApiKey.objects.for_organization(tenant.organization).get(pk=r.json()["id"])
    assert key.scopes == ["read", "predict"]
    assert key.expires_at == expires
    refused = client.post(
        KEYS,
        {"name": "x", "endpoints": [endpoint_id]},
        content_type="application/json",
        **basic(tenant.user.email),
    )
    assert refused.status_code == 400
    assert f"No endpoint {endpoint_id} in your organization" in refused.json()["error"]["message"]


def test_it_refuses_unknown_or_no_scopes_and_a_past_expiry(client, tenant):
    auth = basic(tenant.user.email)
    for body, field in (
        ({"name": "x", "scopes": ["admin"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ):
        r = client.post(KEYS, body, content_type="application/json", **auth)
        assert r.status_code == 400, (body, r.content)
        assert field in r.json()["error"]["fields"], body


def test_a_key_limited_to_endpoints_is_refused_on_others_naming_the_endpoint(client, tenant):
    allowed, other = str(uuid.uuid4()), str(uuid.uuid4())
    key, raw = key_with(tenant, scopes=["predict"])
    key.endpoint_ids = [allowed]
    key.save(update_fields=["endpoint_ids"])
    r = client.post(f"/api/v1/endpoints/{other}/predict/", **bearer(raw))
    assert r.status_code == 403
    assert f"may not call endpoint {other}" in r.json()["error"]["message"]
    # The allowed one gets past the key's checks (and is missing: 404).
    assert client.post(f"/api/v1/endpoints/{allowed}/predict/", **bearer(raw)).status_code == 404


def test_an_expired_key_answers_401_saying_so(client, tenant):
    key, raw = key_with(tenant, expires_at=timezone.now() + timedelta(minutes=5))
    assert client.get(ORGANIZATION, **bearer(raw)).status_code == 200
    ApiKey.objects.for_organization(tenant.organization).filter(pk=key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    r = client.get(ORGANIZATION, **bearer(raw))
    assert r.status_code == 401
    message = r.json()["error"]["message"]
    assert message.startswith("This API key expired on ")
    assert "Create a new one on the API keys page" in message


def test_a_key_cannot_create_list_or_revoke_keys(client, tenant, outsider):
    before = ApiKey.objects.for_organization(tenant.organization).count()
    for method, url, body in (
        ("get", KEYS, {}),
        ("post", KEYS, {"data": {"name": "minted"}}),
        ("get", f"{KEYS}{tenant.api_key.pk}/", {}),
        ("delete", f"{KEYS}{tenant.api_key.pk}/", {}),
    ):
        r = getattr(client, method)(url, **body, **tenant.auth)
        assert r.status_code == 403, (method, url)
        assert r.json()["error"]["message"].startswith("API keys cannot manage keys")
    assert ApiKey.objects.for_organization(tenant.organization).count() == before
    tenant.api_key.refresh_from_db()
    assert tenant.api_key.revoked_at is None


def test_members_manage_their_own_keys_admins_everyones(client, tenant, outsider):
    member = join_as(tenant, "member@acme.example", Role.MEMBER)
    admin = join_as(tenant, "admin@acme.example", Role.ADMIN)
    mine = client.post(KEYS, {"name": "mine"}, **basic(member.email)).json()

    listed = client.get(KEYS, **basic(member.email)).json()["results"]
    assert [k["name"] for k in listed] == ["mine"]
    owners = f"{KEYS}{tenant.api_key.pk}/"
    assert client.delete(owners, **basic(member.email)).status_code == 404
    tenant.api_key.refresh_from_db()
    assert tenant.api_key.revoked_at is None

    assert {k["name"] for k in client.get(KEYS, **basic(admin.email)).json()["results"]} == {
        "mine",
        "tests",
    }
    assert client.delete(f"{KEYS}{mine['id']}/", **basic(admin.email)).status_code == 204


def test_the_page_hides_and_protects_other_members_keys(client, tenant, outsider):
    member = join_as(tenant, "member@acme.example", Role.MEMBER)
    client.force_login(member)
    page = client.get("/accounts/api-keys/").content.decode()
    assert tenant.api_key.prefix not in page
    r = client.post(f"/accounts/api-keys/{tenant.api_key.pk}/revoke/")
    assert r.status_code == 404
    tenant.api_key.refresh_from_db()
    assert tenant.api_key.revoked_at is None


def test_the_page_creates_a_predict_only_key_with_an_expiry(client, tenant, outsider):
    client.force_login(tenant.user)
    day = (timezone.localdate() + timedelta(days=10)).isoformat()
    r = client.post(
        "/accounts/api-keys/", {"name": "kiosk", "scopes": ["predict"], "expires_on": day}
    )
    assert r.status_code == 302
    key = ApiKey.objects.for_organization(tenant.organization).get(name="kiosk")
    assert key.scopes == ["predict"]
    assert timezone.localtime(key.expires_at).date().isoformat() == day
    page = client.get("/accounts/api-keys/").content.decode()
    assert "kiosk" in page and "predict" in page


def test_the_page_refuses_a_key_without_scopes_keeping_what_was_typed(client, tenant):
    client.force_login(tenant.user)
    r = client.post("/accounts/api-keys/", {"name": "nothing", "expires_on": "soon"})
    assert r.status_code == 400
    assert 'value="nothing"' in r.content.decode()
    r = client.post("/accounts/api-keys/", {"name": "nothing", "scopes": ["read"]})
    assert r.status_code == 302


def test_keys_survive_a_secret_key_rotation(client, tenant, settings):
    _key, raw = key_with(tenant, scopes=["read"])
    settings.SECRET_KEY = "a-completely-new-secret-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(ORGANIZATION, **bearer(raw)).status_code == 200
    assert client.get(ORGANIZATION, **tenant.auth).status_code == 200


def test_a_key_hashed_the_old_way_works_through_the_fallbacks_and_is_rehashed(
    client, tenant, settings
):
    old_secret = settings.SECRET_KEY
    legacy = hmac.new(old_secret.encode(), tenant.raw_key.encode(), hashlib.sha256).hexdigest()
    ApiKey.objects.for_organization(tenant.organization).filter(pk=tenant.api_key.pk).update(
        key_hash=legacy
    )
    settings.SECRET_KEY = "the-rotated-secret-" + "y" * 40
    settings.SECRET_KEY_FALLBACKS = [old_secret]
    assert client.get(ORGANIZATION, **tenant.auth).status_code == 200

    tenant.api_key.refresh_from_db()
    assert tenant.api_key.key_hash.startswith("sha256$")
    assert api_key_matches(tenant.api_key.key_hash, tenant.raw_key)
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(ORGANIZATION, **tenant.auth).status_code == 200


def test_the_migration_gives_existing_keys_every_scope(tenant):
    migration = importlib.import_module(
        "apps.accounts.migrations.0004_apikey_scopes_expiry_salted_hash"
    )
    ApiKey.objects.for_organization(tenant.organization).update(scopes=[])
    migration.give_existing_keys_every_scope(django_apps, None)
    tenant.api_key.refresh_from_db()
    assert tenant.api_key.scopes == ["read", "write", "predict"]
