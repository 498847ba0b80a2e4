"""The log-in throttle as a person meets it in a real browser (Debian's Chromium via Playwright)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Corr3ct-horse-battery"


def test_the_11th_log_in_after_10_wrong_passwords_says_when_to_try_again(
    embedded_stack, chromium, shots
):
    base = embedded_stack.base_url
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=organization_name]", "Throttle Browser")
    page.fill("input[name=email]", "owner@throttle.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")

    for _ in range(10):
        page.fill("input[name=username]", "Owner@Throttle.example")
        page.fill("input[name=password]", "not the password")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("button[type=submit]")
        assert answer.value.status == 200
        page.wait_for_load_state()
        assert "do not match an account" in page.locator("[data-testid=form-error]").inner_text()

    page.fill("input[name=username]", "owner@throttle.example")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 429
    page.wait_for_load_state()
    error = page.locator("[data-testid=form-error]").inner_text()
    assert error.startswith("Too many attempts; try again in ")
    assert error.endswith(" seconds.")
    assert page.url.endswith("/accounts/login/")
    shots(page, "login-throttled")
    assert violations == []
    context.close()
