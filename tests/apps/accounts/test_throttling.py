"""Budgets of log-in and sign-up attempts, per account and per client address.

Every address below is a documentation address; Django's test client sends 127.0.0.1 unless a
test says otherwise.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import pytest
from django.test import RequestFactory

from apps.accounts.models import ApiKey, User
from apps.accounts.throttling import LOGIN, Rate, TooManyAttempts
from tests.conftest import PASSWORD

LOGIN_PAGE = "/accounts/login/"
SIGNUP_PAGE = "/accounts/signup/"
SIGNUP = "/api/v1/auth/signup/"
KEYS = "/api/v1/api-keys/"
HOME = "198.51.100.7"
ELSEWHERE = "203.0.113.50"


def log_in(client, email: str, password: str, address: str = HOME, **headers: str):
    body = {"username": email, "password": password}
    return client.post(LOGIN_PAGE, body, REMOTE_ADDR=address, **headers)


def basic(client, email: str, password: str, address: str = HOME):
    token = base64.b64encode(f"{email}:{password}".encode()).decode()
    auth = {"HTTP_AUTHORIZATION": f"Basic {token}", "REMOTE_ADDR": address}
    return client.post(KEYS, {"name": "ci"}, content_type="application/json", **auth)


def sign_up(client, email: str, address: str = HOME, forwarded: str | None = None, **fields):
    body = {"email": email, "password": PASSWORD, "organization_name": "Shop"} | fields
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    return client.post(
        SIGNUP, body, content_type="application/json", REMOTE_ADDR=address, **headers
    )


def assert_throttled_page(response) -> None:
    assert response.status_code == 429
    seconds = int(response["Retry-After"])
    assert 1 <= seconds <= 60
    assert f"Too many attempts; try again in {seconds} seconds" in response.content.decode()


def assert_throttled_api(response) -> None:
    assert response.status_code == 429, response.content
    seconds = int(response["Retry-After"])
    assert 1 <= seconds <= 60
    assert response.json() == {
        "error": {
            "code": "throttled",
            "message": f"Too many attempts; try again in {seconds} seconds.",
        }
    }


@pytest.mark.parametrize(
    ("text", "rate"),
    [("10/minute", Rate(10, 60)), ("30/hour", Rate(30, 3600)), ("5/s", Rate(5, 1))],
)
def test_it_reads_rates_as_drf_writes_them(text, rate):
    assert Rate.parse(text) == rate
    assert Rate.parse(text.replace("/", "/ ").upper()) == rate


@pytest.mark.parametrize("text", ["ten/minute", "10", "10/fortnight", "-1/minute"])
def test_it_names_the_format_of_a_bad_rate(text):
    with pytest.raises(ValueError, match="<count>/<second|minute|hour|day>"):
        Rate.parse(text)


def test_the_11th_wrong_password_on_the_page_is_refused_even_when_right(client, tenant, outsider):
    for _ in range(10):
        r = log_in(client, tenant.user.email, "wrong-one")
        assert r.status_code == 200
        assert "do not match an account" in r.content.decode()

    assert_throttled_page(log_in(client, tenant.user.email, PASSWORD))
    assert "_auth_user_id" not in client.session
    # The account's budget is spent from every address, whatever the email's case.
    assert_throttled_page(log_in(client, tenant.user.email.upper(), PASSWORD, ELSEWHERE))

    r = log_in(client, outsider.user.email, PASSWORD, ELSEWHERE)
    assert r.status_code == 302
    assert client.session["_auth_user_id"] == str(outsider.user.pk)


def test_the_11th_wrong_password_over_http_basic_is_refused_even_when_right(
    client, tenant, outsider
):
    for _ in range(10):
        assert basic(client, tenant.user.email, "wrong-one").status_code == 401

    assert_throttled_api(basic(client, tenant.user.email, PASSWORD))
    assert ApiKey.objects.for_organization(tenant.organization).count() == 1  # the fixture's
    assert basic(client, outsider.user.email, PASSWORD, ELSEWHERE).status_code == 201


def test_the_page_and_http_basic_share_one_budget(client, tenant):
    for _ in range(5):
        log_in(client, tenant.user.email, "wrong-one")
        basic(client, tenant.user.email, "wrong-one")

    assert_throttled_api(basic(client, tenant.user.email, PASSWORD))
    assert_throttled_page(log_in(client, tenant.user.email, PASSWORD))


def test_successful_log_ins_use_no_budget(client, tenant, settings):
    settings.LEPTON_LOGIN_RATE_PER_ACCOUNT = "2/minute"
    for _ in range(4):
        assert basic(client, tenant.user.email, PASSWORD).status_code == 201
    assert log_in(client, tenant.user.email, PASSWORD).status_code == 302


def test_the_right_password_works_again_once_the_window_passes(client, tenant, settings):
    settings.LEPTON_LOGIN_RATE_PER_ACCOUNT = "2/second"
    log_in(client, tenant.user.email, "wrong-one")
    log_in(client, tenant.user.email, "wrong-one")
    r = log_in(client, tenant.user.email, PASSWORD)
    assert r.status_code == 429 and r["Retry-After"] == "1"
    assert "try again in 1 second." in r.content.decode()

    time.sleep(1.1)
    assert log_in(client, tenant.user.email, PASSWORD).status_code == 302


def test_an_address_has_a_budget_across_accounts(client, tenant, outsider, settings):
    settings.LEPTON_LOGIN_RATE_PER_ADDRESS = "3/minute"
    for n in range(3):
        assert log_in(client, f"guess{n}@acme.example", "wrong-one").status_code == 200

    assert_throttled_page(log_in(client, tenant.user.email, PASSWORD))
    assert log_in(client, outsider.user.email, PASSWORD, ELSEWHERE).status_code == 302


def test_a_spoofed_forwarded_for_does_not_escape_without_trusted_proxies(client, tenant, settings):
    settings.LEPTON_TRUSTED_PROXIES = 0
    settings.LEPTON_LOGIN_RATE_PER_ADDRESS = "3/minute"
    for n in range(3):
        spoof = {"HTTP_X_FORWARDED_FOR": f"192.0.2.{n}"}
        log_in(client, f"guess{n}@acme.example", "wrong-one", **spoof)

    spoof = {"HTTP_X_FORWARDED_FOR": "192.0.2.99"}
    assert_throttled_page(log_in(client, tenant.user.email, PASSWORD, **spoof))


def test_behind_one_proxy_the_address_it_appended_is_the_clients(client, tenant, settings):
    settings.LEPTON_TRUSTED_PROXIES = 1
    settings.LEPTON_LOGIN_RATE_PER_ADDRESS = "3/minute"
    proxy = "10.0.0.2"
    for n in range(3):
        through = {"HTTP_X_FORWARDED_FOR": f"192.0.2.{n}, {HOME}"}
        log_in(client, f"guess{n}@acme.example", "wrong-one", proxy, **through)

    # What the client wrote before the proxy's entry changes nothing ...
    through = {"HTTP_X_FORWARDED_FOR": f"192.0.2.99, {HOME}"}
    assert_throttled_page(log_in(client, tenant.user.email, PASSWORD, proxy, **through))
    # ... while another client behind the same proxy has a budget of its own.
    through = {"HTTP_X_FORWARDED_FOR": ELSEWHERE}
    assert log_in(client, tenant.user.email, PASSWORD, proxy, **through).status_code == 302


def test_sign_ups_are_limited_per_address_and_a_spoofed_header_does_not_help(client, db, settings):
    settings.LEPTON_SIGNUP_RATE_PER_ADDRESS = "2/hour"
    assert sign_up(client, "a@shop.example").status_code == 201
    assert sign_up(client, "b@shop.example").status_code == 201

    r = sign_up(client, "c@shop.example", forwarded="192.0.2.1")
    assert r.status_code == 429
    assert 3500 < int(r["Retry-After"]) <= 3600
    assert r.json()["error"]["code"] == "throttled"
    assert not User.objects.filter(email="c@shop.example").exists()

    assert sign_up(client, "c@shop.example", ELSEWHERE).status_code == 201


def test_behind_a_proxy_sign_ups_count_per_forwarded_client(client, db, settings):
    settings.LEPTON_TRUSTED_PROXIES = 1
    settings.LEPTON_SIGNUP_RATE_PER_ADDRESS = "1/hour"
    assert sign_up(client, "a@shop.example", forwarded=HOME).status_code == 201
    assert sign_up(client, "b@shop.example", forwarded=HOME).status_code == 429
    assert sign_up(client, "b@shop.example", forwarded=ELSEWHERE).status_code == 201


def test_sign_ups_are_limited_per_email_from_any_address(client, db, settings):
    settings.LEPTON_SIGNUP_RATE_PER_ACCOUNT = "2/hour"
    assert sign_up(client, "a@shop.example", HOME, organization_name="").status_code == 400
    assert sign_up(client, "A@shop.example", ELSEWHERE, organization_name="").status_code == 400
    assert sign_up(client, "a@shop.example", "192.0.2.3").status_code == 429


def test_the_sign_up_page_says_when_to_try_again(client, db, settings):
    settings.LEPTON_SIGNUP_RATE_PER_ADDRESS = "1/hour"
    body = {"email": "a@shop.example", "password": "short", "organization_name": "Shop"}
    assert client.post(SIGNUP_PAGE, body, REMOTE_ADDR=HOME).status_code == 400

    r = client.post(SIGNUP_PAGE, body | {"password": PASSWORD}, REMOTE_ADDR=HOME)
    assert r.status_code == 429
    seconds = int(r["Retry-After"])
    assert f"Too many attempts; try again in {seconds} seconds." in r.content.decode()
    assert "a@shop.example" in r.content.decode()  # what was typed is kept
    assert not User.objects.exists()


# Run by a fresh interpreter: reserve log-in attempts, print how many were refused.
RESERVE = """
import json, sys, time
import django
django.setup()
from django.test import RequestFactory
from django.test.utils import override_settings
from apps.accounts.throttling import LOGIN, TooManyAttempts
caches, rate, attempts, address, start_at = json.loads(sys.argv[1])
refused = 0
time.sleep(max(0, start_at - time.time()))  # all together, once every interpreter is up
with override_settings(CACHES=caches, LEPTON_LOGIN_RATE_PER_ADDRESS=rate):
    for _ in range(attempts):
        try:
            LOGIN.reserve(RequestFactory().get("/", REMOTE_ADDR=address), account="")
        except TooManyAttempts:
            refused += 1
print(refused)
"""


def test_processes_share_exact_counts(settings):
    settings.LEPTON_LOGIN_RATE_PER_ADDRESS = "200/minute"
    args = json.dumps([settings.CACHES, "200/minute", 50, HOME, time.time() + 8])
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "tests.settings"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RESERVE, args], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    refused = [process.communicate(timeout=120)[0].strip() for process in processes]

    assert refused == ["0", "0", "0", "0"]
    with pytest.raises(TooManyAttempts):
        LOGIN.reserve(RequestFactory().get("/", REMOTE_ADDR=HOME), account="")


def test_the_admin_log_in_shares_the_budget_of_the_page(client, tenant):
    tenant.user.is_staff = True
    tenant.user.save(update_fields=["is_staff"])
    for _ in range(5):
        log_in(client, tenant.user.email, "wrong-one")
        body = {"username": tenant.user.email, "password": "wrong-one"}
        assert client.post("/admin/login/", body, REMOTE_ADDR=HOME).status_code == 200

    body = {"username": tenant.user.email, "password": PASSWORD, "next": "/admin/"}
    r = client.post("/admin/login/", body, REMOTE_ADDR=HOME)
    assert r.status_code == 200
    assert "Too many attempts; try again in" in r.content.decode()
    assert "_auth_user_id" not in client.session
