"""Several organizations per user: the header's switcher (a POST that sets the session's
organization), the page that creates another organization, and GET /api/v1/organizations/,
where an API key sees only its own organization."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.core.scoping import tenant_scope
from apps.tenants.models import Membership, Organization, Role
from apps.tenants.selectors import SESSION_KEY
from apps.tenants.services import organization_create, organization_suspend

SWITCH = "/accounts/organization/switch/"
NEW = "/accounts/organizations/new/"


@pytest.fixture
def second(tenant):
    """A second organization of tenant's owner, where they are an admin."""
    organization = organization_create(name="Beta Works", owner=tenant.user)
    Membership.objects.filter(organization=organization, user=tenant.user).update(role=Role.ADMIN)
    return organization


@pytest.fixture
def browser(tenant) -> Client:
    client = Client()
    client.force_login(tenant.user)
    return client


def switch(client: Client, organization_id, next_url: str = "/") -> object:
    return client.post(SWITCH, {"organization": str(organization_id), "next": next_url})


def acting_for(client: Client) -> str:
    return client.get("/api/v1/organization/").json()["name"]


def test_it_acts_for_the_first_organization_until_another_is_chosen(browser, tenant, second):
    assert acting_for(browser) == "Acme Vision"
    response = switch(browser, second.pk, "/datasets/")
    assert (response.status_code, response["Location"]) == (302, "/datasets/")
    assert browser.session[SESSION_KEY] == str(second.pk)
    assert acting_for(browser) == "Beta Works"
    home = browser.get("/", follow=True).content.decode()
    assert "Welcome to Beta Works" in home
    assert "You are now working in Beta Works." in home
    assert switch(browser, tenant.organization.pk).status_code == 302
    assert acting_for(browser) == "Acme Vision"


def test_the_header_lists_every_organization_with_the_role_and_marks_the_active_one(
    browser, tenant, second
):
    page = browser.get("/").content.decode()
    assert 'data-testid="org-name">Acme Vision<' in page
    listed = page[page.index('data-testid="org-list"') :]
    assert listed.index("Acme Vision") < listed.index("Beta Works")
    assert "Owner" in listed and "Admin" in listed
    assert page.count('aria-current="true"') == 1
    assert f'value="{second.pk}"' in page
    assert 'href="/accounts/organizations/new/"' in page


def test_it_refuses_an_organization_of_another_user_like_a_missing_one(browser, tenant, outsider):
    refused = switch(browser, outsider.organization.pk)
    missing = switch(browser, uuid.uuid4())
    assert refused.status_code == missing.status_code == 404
    assert refused.content.decode().count("No organization of yours has this id") == 1
    assert SESSION_KEY not in browser.session
    assert acting_for(browser) == "Acme Vision"
    assert "Rival Labs" not in browser.get("/").content.decode()


def test_it_refuses_an_inactive_organization(browser, second):
    Organization.objects.filter(pk=second.pk).update(is_active=False)
    assert switch(browser, second.pk).status_code == 404
    assert "Beta Works" not in browser.get("/").content.decode()


@pytest.mark.parametrize("bad", ["", "nope", "1 OR 1=1", "12345678-1234-1234-1234-1234567890zz"])
def test_it_answers_400_to_an_id_that_is_not_one(browser, bad):
    response = browser.post(SWITCH, {"organization": bad})
    assert response.status_code == 400
    assert "Choose the organization to switch to" in response.content.decode()


def test_it_answers_400_when_no_organization_is_named(browser):
    assert browser.post(SWITCH, {}).status_code == 400


def test_it_switches_only_by_post(browser, second):
    assert browser.get(SWITCH, {"organization": str(second.pk)}).status_code == 405
    assert SESSION_KEY not in browser.session


def test_it_sends_an_anonymous_visitor_to_log_in(client, second):
    response = client.post(SWITCH, {"organization": str(second.pk)})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_api_key_cannot_switch_a_page_session(client, tenant, second):
    response = client.post(SWITCH, {"organization": str(second.pk)}, **tenant.auth)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_checks_the_csrf_token(tenant, second):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant.user)
    assert client.post(SWITCH, {"organization": str(second.pk)}).status_code == 403
    assert SESSION_KEY not in client.session


@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        ("https://evil.example/phish", "/"),
        ("//evil.example/phish", "/"),
        ("/\\evil.example/phish", "/"),
        ("javascript:alert(1)", "/"),
        ("http://testserver/models/", "/models/"),
        ("/datasets/?page=2", "/datasets/"),
        (f"/datasets/versions/{uuid.uuid4()}/gallery/", "/datasets/"),
        (f"/models/runs/{uuid.uuid4()}/", "/models/"),
        (f"/endpoints/{uuid.uuid4()}/", "/endpoints/"),
        ("/accounts/api-keys/", "/accounts/api-keys/"),
        ("/no/such/page/", "/"),
        (SWITCH, "/"),
        ("", "/"),
    ],
)
def test_it_goes_back_to_the_section_on_this_site_only(browser, second, next_url, landing):
    response = switch(browser, second.pk, next_url)
    assert response.status_code == 302
    assert response["Location"] == landing


def test_a_suspended_organization_can_be_switched_to_and_shows_why(browser, tenant, second):
    organization_suspend(organization=second, actor=None, reason="Unpaid invoice")
    response = switch(browser, second.pk, "/datasets/")
    assert response["Location"] == "/datasets/"
    page = browser.get("/datasets/")
    assert page.status_code == 403
    text = page.content.decode()
    assert "Unpaid invoice" in text
    # The switcher is still there to go back.
    assert f'value="{tenant.organization.pk}"' in text
    assert "suspended" in text[text.index('data-testid="org-list"') :]
    switch(browser, tenant.organization.pk)
    assert browser.get("/datasets/").status_code == 200


def test_it_creates_an_organization_whose_creator_is_the_owner_and_works_in_it(
    browser, tenant, outsider
):
    assert browser.get(NEW).status_code == 200
    response = browser.post(NEW, {"name": "  Gamma Labs  ", "region": "apac"})
    assert (response.status_code, response["Location"]) == (302, "/")
    created = Organization.objects.get(name="Gamma Labs")
    assert created.region == "apac"
    membership = Membership.objects.get(organization=created)
    assert (membership.user, membership.role) == (tenant.user, Role.OWNER)
    assert browser.session[SESSION_KEY] == str(created.pk)
    assert acting_for(browser) == "Gamma Labs"
    assert "Gamma Labs is ready and you are its owner" in browser.get("/").content.decode()
    with tenant_scope(created):
        assert AuditEvent.objects.filter(action="organization.create").count() == 1
    # Nothing of the first organization moved.
    assert Membership.objects.filter(user=tenant.user).count() == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "   ", "region": "eu"}, "Name the organization"),
        ({"name": "x" * 121, "region": "eu"}, "too long: 120 characters at most"),
        ({"name": "Delta", "region": "mars"}, "Unknown region mars: choose one of eu, us, apac"),
    ],
)
def test_it_refuses_a_bad_organization_with_the_reason(browser, tenant, body, message):
    response = browser.post(NEW, body)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Membership.objects.filter(user=tenant.user).count() == 1


def test_a_person_without_an_organization_can_create_one(db):
    from apps.accounts.models import User

    lonely = User.objects.create_user(email="lonely@nowhere.example", password="x-Long-pass-1")
    client = Client()
    client.force_login(lonely)
    assert client.get("/datasets/").status_code == 403
    assert 'href="/accounts/organizations/new/"' in client.get("/datasets/").content.decode()
    client.post(NEW, {"name": "Solo", "region": "us"})
    assert client.get("/datasets/").status_code == 200


def test_the_create_page_needs_a_log_in(client, db):
    response = client.get(NEW)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- GET /api/v1/organizations/ -------------------------------------------------------------


def test_the_api_lists_a_sessions_organizations_and_the_one_it_acts_for(browser, tenant, second):
    listed = browser.get("/api/v1/organizations/").json()
    assert [(o["name"], o["role"], o["active"]) for o in listed] == [
        ("Acme Vision", "owner", True),
        ("Beta Works", "admin", False),
    ]
    assert listed[1] == {
        "id": str(second.pk),
        "name": "Beta Works",
        "slug": second.slug,
        "role": "admin",
        "region": "eu",
        "active": False,
        "suspended": False,
    }
    switch(browser, second.pk)
    actives = [o["active"] for o in browser.get("/api/v1/organizations/").json()]
    assert actives == [False, True]


def test_an_api_key_lists_only_its_own_organization(client, tenant, second, outsider):
    response = client.get("/api/v1/organizations/", **tenant.auth)
    assert response.status_code == 200
    assert [(o["name"], o["active"]) for o in response.json()] == [("Acme Vision", True)]
    assert str(second.pk) not in response.content.decode()
    assert str(outsider.organization.pk) not in response.content.decode()


def test_a_key_made_in_the_second_organization_sees_only_that_one(client, tenant, second):
    from apps.accounts.services import api_key_create

    _key, raw = api_key_create(organization=second, user=tenant.user, name="beta")
    response = client.get("/api/v1/organizations/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [(o["name"], o["role"]) for o in response.json()] == [("Beta Works", "admin")]
    # The key acts for its organization whatever a session chose.
    assert client.get("/api/v1/organization/", HTTP_AUTHORIZATION=f"Bearer {raw}").json()[
        "name"
    ] == ("Beta Works")


def test_the_api_list_needs_credentials(client, db):
    response = client.get("/api/v1/organizations/")
    assert response.status_code == 401
    assert response.json()["error"]["code"]


def test_a_page_reads_the_memberships_once_for_its_organization_and_the_switcher(browser, second):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    browser.get("/datasets/")
    with CaptureQueriesContext(connection) as queries:
        page = browser.get("/datasets/")
    assert 'data-testid="org-list"' in page.content.decode()
    reads = [q for q in queries.captured_queries if 'FROM "tenants_membership"' in q["sql"]]
    assert len(reads) == 1
