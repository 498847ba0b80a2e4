"""The admin's training-run list in a real browser (Debian's Chromium) at 1366 px, the width of
a common laptop: every column fits without sideways scrolling, the numbers read as people
write them, and the run's page breaks no rule of the Content-Security-Policy. The screenshots
go to $LEPTON_SCREENSHOTS (or the test's temporary folder)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

STAFF = "staff-admin-shot@platform.example"

# Run by the stack's own manage.py, so the rows land in the database the web server reads.
MAKE_ROWS = f"""
from apps.accounts.models import User
from tests.conftest import make_tenant
from tests.support.admin import admin_rows
for letter in "AB":
    admin_rows(make_tenant(f"admin-shot-{{letter.lower()}}@example.com", f"Admin shot {{letter}}"))
User.objects.create_superuser(email="{STAFF}", password="x")
"""


def test_the_run_list_fits_a_laptop_screen(embedded_stack, chromium, shots):
    embedded_stack.manage("shell", "-c", MAKE_ROWS)
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    runs = "/admin/training/trainingrun/"
    page.goto(f"{embedded_stack.base_url}/admin/login/?next={runs}")
    page.fill("input[name=username]", STAFF)
    page.fill("input[name=password]", "x")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")

    shots(page, "admin-training-runs-1366")
    # The admin scrolls a table too wide for its column inside its own box.
    hidden = page.evaluate(
        "() => { const r = document.querySelector('.results');"
        " return r.scrollWidth - r.clientWidth; }"
    )
    assert hidden <= 0, f"{hidden} px of the list are hidden to the right"
    table = page.inner_text("#result_list")
    assert "96.7 %" in table and "1 h 2 min" in table and "100.0 %" in table
    assert "Admin shot A" in table and "Admin shot B" in table

    page.click("text=Admin shot A model")
    page.wait_for_selector("#trainingrun_form")
    shots(page, "admin-training-run-1366")
    assert page.locator("input[name=_save]").count() == 0  # view-only
    assert "1 h 2 min" in page.inner_text("#content")
    assert not violations, violations
    context.close()
