"""Changing a password while logged in, and resetting a forgotten one through the emailed link,
read from the real file email backend."""

from __future__ import annotations

import re
from email.message import Message

from django.test import Client

from apps.accounts.models import User
from tests.conftest import PASSWORD
from tests.support.mail import sent

NEW_PASSWORD = "Another-battery-staple-9"
RESET = "/accounts/password/reset/"
CHANGE = "/accounts/password/"


def reset_link(message: Message) -> str:
    body = message.get_payload(decode=True).decode()
    return re.search(r"https?://[^/\s]+(/accounts/password/reset/\S+/)", body).group(1)


def logged_in(email: str, password: str = PASSWORD) -> Client:
    client = Client()
    assert client.login(email=email, password=password)
    return client


def test_it_changes_the_password_keeps_this_session_and_logs_out_the_others(tenant):
    here, elsewhere = logged_in(tenant.user.email), logged_in(tenant.user.email)
    body = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD}
    response = here.post(CHANGE, body | {"new_password2": NEW_PASSWORD}, follow=True)
    assert response.status_code == 200
    assert "Your password was changed" in response.content.decode()
    assert here.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302
    assert Client().login(email=tenant.user.email, password=NEW_PASSWORD)
    assert not Client().login(email=tenant.user.email, password=PASSWORD)


def test_it_refuses_a_change_without_the_current_password(tenant, outsider):
    client = logged_in(tenant.user.email)
    body = {"old_password": "not-it", "new_password1": NEW_PASSWORD}
    response = client.post(CHANGE, body | {"new_password2": NEW_PASSWORD})
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert User.objects.get(pk=tenant.user.pk).check_password(PASSWORD)


def test_it_sends_the_change_page_to_log_in_without_a_session(db):
    response = Client().get(CHANGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_resets_a_forgotten_password_through_the_emailed_link(
    client, tenant, outsider, mail_folder
):
    response = client.post(RESET, {"email": tenant.user.email.upper()}, follow=True)
    assert "a link to set a new password is on its way" in response.content.decode()
    [message] = sent(mail_folder)
    assert message["To"] == tenant.user.email
    assert "Reset your password" in message["Subject"]
    assert "expires in 3 hours" in message.get_payload(decode=True).decode()

    form = client.get(reset_link(message), follow=True)
    assert form.status_code == 200
    assert 'name="new_password1"' in form.content.decode()
    body = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    done = client.post(form.redirect_chain[-1][0], body, follow=True)
    assert "Your new password is set" in done.content.decode()
    assert Client().login(email=tenant.user.email, password=NEW_PASSWORD)
    assert User.objects.get(pk=outsider.user.pk).check_password(PASSWORD)

    used = client.get(reset_link(message), follow=True)
    assert "does not work any more" in used.content.decode()


def test_it_answers_the_same_for_an_unknown_email_and_sends_nothing(client, tenant, mail_folder):
    known = client.post(RESET, {"email": tenant.user.email})
    unknown = client.post(RESET, {"email": "nobody@nowhere.example"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert [m["To"] for m in sent(mail_folder)] == [tenant.user.email]


def test_it_throttles_reset_requests_per_account_and_per_address(
    client, tenant, settings, mail_folder
):
    settings.LEPTON_PASSWORD_RESET_RATE_PER_ACCOUNT = "2/hour"
    settings.LEPTON_PASSWORD_RESET_RATE_PER_ADDRESS = "3/hour"
    for _ in range(2):
        assert client.post(RESET, {"email": tenant.user.email}).status_code == 302
    refused = client.post(RESET, {"email": tenant.user.email}, REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert "Too many attempts; try again in" in refused.content.decode()
    assert len(sent(mail_folder)) == 2

    # The third request from 127.0.0.1 is the last the address allows, for any email.
    assert client.post(RESET, {"email": "someone@else.example"}).status_code == 302
    assert client.post(RESET, {"email": "another@else.example"}).status_code == 429


def test_it_counts_wrong_current_passwords_as_failed_log_ins(tenant, settings):
    settings.LEPTON_LOGIN_RATE_PER_ACCOUNT = "2/minute"
    client = logged_in(tenant.user.email)
    wrong = {"old_password": "not-it", "new_password1": NEW_PASSWORD}
    wrong["new_password2"] = NEW_PASSWORD
    for _ in range(2):
        assert client.post(CHANGE, wrong).status_code == 200
    refused = client.post(CHANGE, wrong | {"old_password": PASSWORD})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Too many attempts; try again in" in refused.content.decode()
    assert User.objects.get(pk=tenant.user.pk).check_password(PASSWORD)
