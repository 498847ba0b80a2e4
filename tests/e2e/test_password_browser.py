"""A forgotten password, reset in a real browser (Debian's Chromium via Playwright) through the
message the running stack wrote to its mail folder, under the portal's CSP."""

from __future__ import annotations

import pytest

from tests.support.mail import wait_for_link

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Corr3ct-horse-battery"
NEW_PASSWORD = "Another-battery-staple-9"
EMAIL = "owner@forgetful.example"


def test_a_forgotten_password_is_reset_through_the_emailed_link(embedded_stack, chromium, shots):
    base = embedded_stack.base_url
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=organization_name]", "Forgetful Shop")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")

    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url("**/accounts/password/reset/")
    page.fill("input[name=email]", EMAIL)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/password/reset/sent/")
    assert "is on its way" in page.locator("[data-testid=reset-sent]").inner_text()
    shots(page, "password-reset-sent")

    link = wait_for_link(
        embedded_stack.data_dir / "mail", EMAIL, r"https?://\S+/accounts/password/reset/\S+/"
    )
    assert link.startswith(f"{base}/accounts/password/reset/")
    page.goto(link)
    page.wait_for_selector("input[name=new_password1]")
    page.fill("input[name=new_password1]", NEW_PASSWORD)
    page.fill("input[name=new_password2]", NEW_PASSWORD)
    shots(page, "password-reset-confirm")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/password/reset/done/")
    assert "new password is set" in page.locator("[data-testid=reset-complete]").inner_text()

    page.get_by_role("link", name="Log in").last.click()
    page.wait_for_url("**/accounts/login/")
    page.fill("input[name=username]", EMAIL)
    page.fill("input[name=password]", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert page.get_by_role("button", name="Log out").is_visible()

    page.goto(link)
    assert "does not work any more" in page.locator("[data-testid=form-error]").inner_text()
    assert violations == []
    context.close()


def test_the_sessions_page_logs_out_the_other_browser(embedded_stack, chromium, shots):
    base = embedded_stack.base_url
    email = "owner@two-browsers.example"
    laptop_context = chromium.new_context(viewport={"width": 1280, "height": 900})
    laptop = laptop_context.new_page()
    laptop.set_default_timeout(30_000)
    violations: list[str] = []
    laptop.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    laptop.goto(f"{base}/accounts/signup/")
    laptop.fill("input[name=organization_name]", "Two Browsers")
    laptop.fill("input[name=email]", email)
    laptop.fill("input[name=password]", PASSWORD)
    laptop.click("button[type=submit]")
    laptop.wait_for_url(f"{base}/")

    phone_context = chromium.new_context(user_agent="Phone browser for the test")
    phone = phone_context.new_page()
    phone.goto(f"{base}/accounts/login/")
    phone.fill("input[name=username]", email)
    phone.fill("input[name=password]", PASSWORD)
    phone.click("button[type=submit]")
    phone.wait_for_url(f"{base}/")

    laptop.goto(f"{base}/accounts/sessions/")
    table = laptop.locator("[data-testid=sessions]")
    assert table.locator("tbody tr").count() == 2
    assert "Phone browser for the test" in table.inner_text()
    shots(laptop, "sessions")
    laptop.get_by_role("button", name="Log out all other sessions").click()
    laptop.wait_for_url("**/accounts/sessions/")
    assert "1 other session was logged out." in laptop.content()
    assert table.locator("tbody tr").count() == 1

    phone.goto(f"{base}/")
    assert "/accounts/login/" in phone.url
    assert violations == []
    phone_context.close()
    laptop_context.close()
