"""Changing the email in a real browser (Debian's Chromium via Playwright) under the portal's
CSP: ask on the Email page, read the messages the running stack wrote to its mail folder, follow
the link (logging in on the way) and log in with the new address."""

from __future__ import annotations

import re

import pytest

from tests.support.mail import wait_for_message

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Corr3ct-horse-battery"
OLD = "owner@old-address.example"
NEW = "owner@new-address.example"


def _log_in(page, email: str, password: str = PASSWORD) -> None:
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_the_email_changes_through_the_link_sent_to_the_new_address(
    embedded_stack, chromium, shots
):
    base = embedded_stack.base_url
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=organization_name]", "Mail Movers")
    page.fill("input[name=email]", OLD)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    # The account pages are one click from the header, and link to each other.
    page.get_by_role("link", name=OLD).click()
    page.wait_for_url("**/accounts/password/")
    page.locator("[data-testid=account-nav]").get_by_role("link", name="Email").click()
    page.wait_for_url("**/accounts/email/")
    assert page.locator("[data-testid=current-email]").inner_text() == OLD
    page.fill("input[name=new_email]", NEW)
    page.fill("input[name=password]", "not my password")
    page.get_by_role("button", name="Send confirmation link").click()
    assert "entered incorrectly" in page.locator("[data-testid=form-error]").inner_text()
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Send confirmation link").click()
    page.wait_for_url("**/accounts/email/")
    assert f"A confirmation link has been sent to {NEW}" in page.locator(".messages").inner_text()
    shots(page, "email-change-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    shots(page, "email-change-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows
    page.set_viewport_size({"width": 1366, "height": 900})

    folder = embedded_stack.data_dir / "mail"
    notice = wait_for_message(folder, OLD)
    assert NEW in notice.get_payload(decode=True).decode()
    body = wait_for_message(folder, NEW).get_payload(decode=True).decode()
    link = re.search(r"https?://\S+/accounts/email/confirm/\S+/", body).group(0)
    assert link.startswith(f"{base}/accounts/email/confirm/")

    # Logged out, the link asks to log in (with the address in use until now), then confirms.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    page.goto(link)
    page.wait_for_url("**/accounts/login/?next=**")
    _log_in(page, OLD)
    page.wait_for_selector("[data-testid=email-change-confirm]")
    assert NEW in page.locator("[data-testid=email-change-confirm]").inner_text()
    shots(page, "email-change-confirm")
    page.get_by_role("button", name="Change my email").click()
    page.wait_for_url("**/accounts/email/")
    assert f"Your email is now {NEW}" in page.locator(".messages").inner_text()
    assert page.locator("[data-testid=current-email]").inner_text() == NEW

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    _log_in(page, OLD)
    assert page.locator("[data-testid=form-error]").is_visible()
    _log_in(page, NEW)
    page.wait_for_url(f"{base}/")
    assert page.get_by_role("link", name=NEW).is_visible()

    page.goto(link)
    assert "does not work any more" in page.locator("[data-testid=form-error]").inner_text()
    assert violations == []
    context.close()
