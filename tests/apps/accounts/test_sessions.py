"""The sessions page: a user's logged-in browsers with their last activity, and logging out all
but this one."""

from __future__ import annotations

from django.test import Client

from apps.accounts.models import UserSession
from tests.conftest import PASSWORD

SESSIONS = "/accounts/sessions/"


def browser(email: str, agent: str) -> Client:
    client = Client(HTTP_USER_AGENT=agent)
    response = client.post("/accounts/login/", {"username": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_it_lists_the_users_sessions_and_only_theirs(tenant, outsider):
    laptop = browser(tenant.user.email, "Laptop Firefox")
    browser(tenant.user.email, "Phone Safari")
    browser(outsider.user.email, "Rival Chrome")
    page = laptop.get(SESSIONS).content.decode()
    assert "Laptop Firefox" in page and "Phone Safari" in page
    assert "Rival Chrome" not in page
    assert page.count('data-testid="current-session"') == 1


def test_it_logs_out_every_other_session_and_keeps_this_one(tenant, outsider):
    laptop = browser(tenant.user.email, "Laptop Firefox")
    phone = browser(tenant.user.email, "Phone Safari")
    rival = browser(outsider.user.email, "Rival Chrome")
    response = laptop.post(f"{SESSIONS}end-others/", follow=True)
    assert "1 other session was logged out." in response.content.decode()
    assert laptop.get("/").status_code == 200
    assert phone.get("/").status_code == 302
    assert rival.get("/").status_code == 200
    page = laptop.get(SESSIONS).content.decode()
    assert "Phone Safari" not in page and "Laptop Firefox" in page


def test_it_forgets_a_session_that_logs_out(tenant):
    phone = browser(tenant.user.email, "Phone Safari")
    assert UserSession.objects.filter(user=tenant.user).count() == 1
    phone.post("/accounts/logout/")
    assert not UserSession.objects.filter(user=tenant.user).exists()


def test_a_password_change_ends_the_other_sessions_at_once(tenant):
    laptop = browser(tenant.user.email, "Laptop Firefox")
    browser(tenant.user.email, "Phone Safari")
    new = "Another-battery-staple-9"
    body = {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    assert laptop.post("/accounts/password/", body).status_code == 302
    page = laptop.get(SESSIONS).content.decode()
    assert "Phone Safari" not in page and "Laptop Firefox" in page


def test_it_sends_the_page_to_log_in_without_a_session(db):
    response = Client().get(SESSIONS)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_pages_viewed_within_a_minute_cost_no_session_query(tenant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = browser(tenant.user.email, "Firefox")
    client.get("/datasets/")  # the first page after log-in writes the row
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/datasets/").status_code == 200
    assert not [q for q in queries.captured_queries if "accounts_usersession" in q["sql"]]
    assert UserSession.objects.filter(user=tenant.user).count() == 1
