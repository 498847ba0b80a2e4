"""Signing up through the API and the browser form, and logging in."""

from __future__ import annotations

import pytest
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.tenants.models import Membership, Organization, Role
from tests.conftest import PASSWORD

SIGNUP = "/api/v1/auth/signup/"


def signup(client, **fields):
    body = {"email": "new@shop.example", "password": PASSWORD, "organization_name": "Shop"}
    return client.post(SIGNUP, body | fields, content_type="application/json")


def validator_messages(password: str, email: str) -> list[str]:
    try:
        password_validation.validate_password(password, user=User(email=email, username=email))
    except ValidationError as exc:
        return exc.messages
    return []


def test_it_creates_user_organization_owner_membership_and_audit_event(client, outsider):
    r = signup(client, email="  Ana@Shop.Example ", organization_name="Café Zürich")
    assert r.status_code == 201, r.content
    body = r.json()

    user = User.objects.get(pk=body["user"]["id"])
    assert user.email == "ana@shop.example" == body["user"]["email"]
    assert user.check_password(PASSWORD)
    organization = Organization.objects.get(pk=body["organization"]["id"])
    assert organization.name == "Café Zürich" == body["organization"]["name"]
    assert organization.slug == body["organization"]["slug"]
    assert organization != outsider.organization

    membership = Membership.objects.get(user=user)
    assert membership.organization == organization
    assert membership.role == Role.OWNER
    event = AuditEvent.all_tenants.get(organization=organization, action="organization.create")
    assert event.actor == user
    assert event.target_id == str(organization.pk)
    assert not AuditEvent.all_tenants.filter(
        organization=outsider.organization, actor=user
    ).exists()


def test_it_refuses_a_duplicate_email_whatever_its_case(client, tenant):
    r = signup(client, email=tenant.user.email.upper())
    assert r.status_code == 400
    error = r.json()["error"]
    assert "already exists" in error["message"]
    assert "email" in error["fields"]
    assert User.objects.filter(email=tenant.user.email).count() == 1
    assert Organization.objects.count() == 1


@pytest.mark.parametrize("password", ["password", "12345678901", "short"])
def test_it_refuses_a_weak_password_with_the_validators_message(client, db, password):
    expected = validator_messages(password, "new@shop.example")
    assert expected, f"{password!r} should be weak"

    r = signup(client, password=password)
    assert r.status_code == 400
    error = r.json()["error"]
    assert "password" in error["fields"]
    for message in expected:
        assert message in error["message"]
    assert not User.objects.exists()
    assert not Organization.objects.exists()


def test_it_refuses_a_password_like_the_email(client, db):
    r = signup(client, email="margarethe@shop.example", password="margarethe@shop")
    assert r.status_code == 400
    assert "too similar" in r.json()["error"]["message"]


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@shop.example", "a b@shop.example"])
def test_it_refuses_a_bad_email(client, db, email):
    r = signup(client, email=email)
    assert r.status_code == 400
    error = r.json()["error"]
    assert "email" in error["fields"]
    assert "valid email" in error["message"]
    assert not User.objects.exists()


@pytest.mark.parametrize("organization_name", [None, "", "   "])
def test_it_refuses_a_missing_organization_name(client, db, organization_name):
    body = {"email": "new@shop.example", "password": PASSWORD}
    if organization_name is not None:
        body["organization_name"] = organization_name
    r = client.post(SIGNUP, body, content_type="application/json")
    assert r.status_code == 400
    error = r.json()["error"]
    assert "organization_name" in error["fields"]
    assert error["message"].startswith("organization_name")
    assert not User.objects.exists()


def test_it_refuses_an_organization_name_over_120_characters(client, db):
    r = signup(client, organization_name="x" * 121)
    assert r.status_code == 400
    assert "120" in r.json()["error"]["message"]


def test_it_signs_up_from_the_form_and_logs_the_user_in(client, outsider):
    r = client.post(
        "/accounts/signup/",
        {"email": "form@shop.example", "password": PASSWORD, "organization_name": "Form Shop"},
    )
    assert r.status_code == 302
    assert r.url == "/"
    user = User.objects.get(email="form@shop.example")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert Membership.objects.get(user=user).organization.name == "Form Shop"

    home = client.get("/")
    assert home.status_code == 200
    assert home.context["request"].user == user


def test_the_form_shows_the_problem_and_keeps_what_was_typed(client, tenant):
    r = client.post(
        "/accounts/signup/",
        {"email": tenant.user.email, "password": PASSWORD, "organization_name": "Second Shop"},
    )
    assert r.status_code == 400
    assert "already exists" in r.content.decode()
    assert "Second Shop" in r.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_login_page_shows_an_error_for_a_wrong_password(client, tenant):
    r = client.post("/accounts/login/", {"username": tenant.user.email, "password": "wrong-one"})
    assert r.status_code == 200
    assert "do not match an account" in r.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_login_page_logs_in_with_the_right_password(client, tenant):
    r = client.post("/accounts/login/", {"username": tenant.user.email, "password": PASSWORD})
    assert r.status_code == 302
    assert client.session["_auth_user_id"] == str(tenant.user.pk)


def test_it_logs_in_with_the_email_as_typed_at_sign_up(client, db):
    r = signup(client, email="Ana.Lopez@Shop.Example")
    assert r.status_code == 201

    typed = {"username": " Ana.Lopez@Shop.Example", "password": PASSWORD}
    r = client.post("/accounts/login/", typed)
    assert r.status_code == 302
    user = User.objects.get(email="ana.lopez@shop.example")
    assert client.session["_auth_user_id"] == str(user.pk)
