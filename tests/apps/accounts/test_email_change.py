"""Changing the email: the current password asks for it, a link goes to the new address and a
notice to the old one (read from the real file email backend), and the email changes only when
the account that asked opens the link."""

from __future__ import annotations

import re
from email.message import Message

import pytest
from django.test import Client

from apps.accounts.email_change import email_change_token
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.core.scoping import tenant_scope
from tests.apps.accounts.test_password import logged_in
from tests.conftest import PASSWORD
from tests.support.mail import body, sent

PAGE = "/accounts/email/"
NEW = "new.address@acme.example"


def ask(client: Client, new_email: str = NEW, password: str = PASSWORD, **extra):
    return client.post(PAGE, {"new_email": new_email, "password": password}, **extra)


def confirm_link(message: Message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/email/confirm/\S+/)", body(message)).group(1)


def email_of(user) -> str:
    return User.objects.get(pk=user.pk).email


def test_it_sends_a_link_to_the_new_address_and_a_notice_to_the_old_one(tenant, mail_folder):
    client = logged_in(tenant.user.email)
    response = ask(client, "  New.Address@ACME.example ", follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    assert f"A confirmation link has been sent to {NEW}" in text
    assert f"Your email stays {tenant.user.email}" in text
    link, notice = sorted(sent(mail_folder), key=lambda m: m["To"] != NEW)
    assert link["To"] == NEW
    assert "Confirm your new email on testserver" in link["Subject"]
    assert f"account {tenant.user.email} on testserver to this address, {NEW}" in body(link)
    assert "expires in 24 hours" in body(link)
    assert confirm_link(link).startswith("/accounts/email/confirm/")
    assert notice["To"] == tenant.user.email
    assert f"asked to change its email to {NEW}" in body(notice)
    assert "http://testserver/accounts/password/" in body(notice)
    assert "/accounts/email/confirm/" not in body(notice)
    assert email_of(tenant.user) == tenant.user.email
    with tenant_scope(tenant.organization):
        event = AuditEvent.objects.get(action="user.email_change_request")
    assert (event.actor, event.data) == (tenant.user, {"new_email": NEW})


def test_opening_the_link_asks_and_confirming_changes_the_email(tenant, outsider, mail_folder):
    client = logged_in(tenant.user.email)
    ask(client)
    [link] = [m for m in sent(mail_folder) if m["To"] == NEW]
    page = client.get(confirm_link(link))
    assert page.status_code == 200
    assert f"to <b>{NEW}</b>?" in page.content.decode()
    assert email_of(tenant.user) == "owner@acme.example"  # opening alone changes nothing

    done = client.post(confirm_link(link), follow=True)
    assert f"Your email is now {NEW}. Log in with it from now on." in done.content.decode()
    assert email_of(tenant.user) == NEW
    assert User.objects.get(pk=tenant.user.pk).username == NEW
    assert client.get("/").status_code == 200  # this session stays logged in
    assert Client().login(email=NEW, password=PASSWORD)
    assert not Client().login(email="owner@acme.example", password=PASSWORD)
    assert email_of(outsider.user) == "owner@rival.example"
    with tenant_scope(tenant.organization):
        event = AuditEvent.objects.get(action="user.email_change")
    assert event.data == {"old_email": "owner@acme.example", "new_email": NEW}

    again = client.post(confirm_link(link))
    assert again.status_code == 400
    assert "does not work any more" in again.content.decode()


def test_confirming_voids_every_other_link_sent_before(tenant, mail_folder):
    client = logged_in(tenant.user.email)
    ask(client, "first@acme.example")
    ask(client, "second@acme.example")
    links = {m["To"]: confirm_link(m) for m in sent(mail_folder) if "confirm" in body(m)}
    client.post(links["second@acme.example"])
    refused = client.post(links["first@acme.example"])
    assert refused.status_code == 400
    assert "email or password changed since it was sent" in refused.content.decode()
    assert email_of(tenant.user) == "second@acme.example"


def test_a_new_password_voids_the_link(tenant, mail_folder):
    client = logged_in(tenant.user.email)
    ask(client)
    [link] = [m for m in sent(mail_folder) if m["To"] == NEW]
    user = User.objects.get(pk=tenant.user.pk)
    user.set_password("Another-battery-staple-9")
    user.save()
    client.force_login(user)
    assert client.post(confirm_link(link)).status_code == 400
    assert email_of(tenant.user) == "owner@acme.example"


def test_after_log_in_the_link_comes_back_to_the_confirmation(tenant, mail_folder):
    ask(logged_in(tenant.user.email))
    [link] = [m for m in sent(mail_folder) if m["To"] == NEW]
    client = Client()
    response = client.get(confirm_link(link))
    assert response.status_code == 302
    login = response["Location"]
    assert login.startswith("/accounts/login/?next=/accounts/email/confirm/")
    done = client.post(login, {"username": tenant.user.email, "password": PASSWORD}, follow=True)
    assert f"to <b>{NEW}</b>?" in done.content.decode()
    client.post(confirm_link(link))
    assert email_of(tenant.user) == NEW


def test_another_account_cannot_use_the_link(tenant, outsider, mail_folder):
    ask(logged_in(tenant.user.email))
    [link] = [m for m in sent(mail_folder) if m["To"] == NEW]
    other = logged_in(outsider.user.email)
    for method in (other.get, other.post):
        response = method(confirm_link(link))
        assert response.status_code == 403
        assert "This link was sent for another account" in response.content.decode()
    assert email_of(tenant.user) == "owner@acme.example"
    assert email_of(outsider.user) == "owner@rival.example"


def test_a_taken_address_gets_the_same_answer_and_is_refused_at_confirmation(
    tenant, outsider, mail_folder
):
    client = logged_in(tenant.user.email)
    free = ask(client, "free@acme.example")
    taken = ask(client, outsider.user.email)
    assert (free.status_code, free["Location"]) == (taken.status_code, taken["Location"])
    [link] = [m for m in sent(mail_folder) if m["To"] == outsider.user.email]
    refused = client.post(confirm_link(link))
    assert refused.status_code == 409
    assert "owner@rival.example already belongs to another account" in refused.content.decode()
    assert email_of(tenant.user) == "owner@acme.example"
    assert email_of(outsider.user) == "owner@rival.example"


def test_an_address_taken_after_the_request_is_refused_too(tenant, mail_folder):
    client = logged_in(tenant.user.email)
    ask(client)
    [link] = [m for m in sent(mail_folder) if m["To"] == NEW]
    User.objects.create_user(email=NEW, password="Some-other-pass-1")
    assert client.post(confirm_link(link)).status_code == 409
    assert email_of(tenant.user) == "owner@acme.example"


def test_it_refuses_a_wrong_password_and_sends_nothing(tenant, mail_folder):
    client = logged_in(tenant.user.email)
    response = ask(client, password="not-it")
    assert response.status_code == 400
    assert "Your password was entered incorrectly" in response.content.decode()
    assert sent(mail_folder) == []


def test_wrong_passwords_count_as_failed_log_ins(tenant, settings, mail_folder):
    settings.LEPTON_LOGIN_RATE_PER_ACCOUNT = "2/minute"
    client = logged_in(tenant.user.email)
    assert ask(client, password="not-it").status_code == 400
    assert ask(client, password="still-not").status_code == 400
    refused = ask(client)  # the right password, once the budget is spent
    assert refused.status_code == 429
    assert "Too many attempts; try again in" in refused.content.decode()
    assert sent(mail_folder) == []


@pytest.mark.parametrize(
    ("new_email", "message"),
    [
        ("not-an-email", "Enter a valid email address"),
        ("", "This field is required"),
        ("OWNER@acme.example", "owner@acme.example is already your email"),
    ],
)
def test_it_refuses_a_bad_address_with_the_reason(tenant, mail_folder, new_email, message):
    response = ask(logged_in(tenant.user.email), new_email)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert sent(mail_folder) == []


def test_it_throttles_requests_per_account(tenant, settings, mail_folder):
    settings.LEPTON_EMAIL_CHANGE_RATE_PER_ACCOUNT = "2/hour"
    client = logged_in(tenant.user.email)
    assert ask(client, "a@acme.example").status_code == 302
    assert ask(client, "b@acme.example").status_code == 302
    refused = ask(client, "c@acme.example")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert "Too many attempts; try again in" in refused.content.decode()
    assert len(sent(mail_folder)) == 4


def test_it_refuses_a_link_that_is_not_one_or_expired(tenant, settings, mail_folder):
    client = logged_in(tenant.user.email)
    bad = client.get("/accounts/email/confirm/not-a-token/")
    assert bad.status_code == 400
    assert "This link is not valid" in bad.content.decode()
    token = email_change_token(user=tenant.user, new_email=NEW)
    cut = client.post(f"/accounts/email/confirm/{token[:-3]}/")
    assert cut.status_code == 400
    settings.LEPTON_EMAIL_CHANGE_TIMEOUT = -1
    expired = client.post(f"/accounts/email/confirm/{token}/")
    assert expired.status_code == 400
    assert "This link has expired" in expired.content.decode()
    assert email_of(tenant.user) == "owner@acme.example"


def test_the_pages_need_a_log_in(db):
    for url in (PAGE, "/accounts/email/confirm/anything/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_the_account_pages_link_to_each_other(tenant):
    client = logged_in(tenant.user.email)
    for url in (PAGE, "/accounts/password/", "/accounts/sessions/"):
        text = client.get(url).content.decode()
        assert 'href="/accounts/email/"' in text
        assert 'href="/accounts/password/"' in text
        assert 'href="/accounts/sessions/"' in text
