"""The platform console in a real browser (Debian's Chromium): staff see each organization's
plan, members, storage and this month's use, and move one to another plan with the admin's
action, under the Content-Security-Policy. Screenshots at 1366 and 390 px go to
$LEPTON_SCREENSHOTS (or the test's temporary folder)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

STAFF = "staff-console@platform.example"

# Run by the stack's own manage.py, so the rows land in the database the web server reads.
MAKE_ROWS = f"""
from apps.accounts.models import User
from tests.conftest import make_tenant
from tests.support.admin import admin_rows
admin_rows(make_tenant("console-a@example.com", "Console shot A"))
make_tenant("console-b@example.com", "Console shot B")
User.objects.create_superuser(email="{STAFF}", password="x")
"""

CHECK_PLAN = """
from apps.audit.models import AuditEvent
from apps.quotas.selectors import organization_limits
from apps.tenants.models import Organization
org = Organization.objects.get(name="Console shot A")
print(organization_limits(org).plan_slug, AuditEvent.all_tenants.filter(
    organization=org, action="quota.plan").count())
"""


def test_staff_see_the_console_and_change_a_plan(embedded_stack, chromium, shots):
    embedded_stack.manage("shell", "-c", MAKE_ROWS)
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    listing = "/admin/tenants/organization/?q=Console+shot"
    page.goto(f"{embedded_stack.base_url}/admin/login/?next=/admin/tenants/organization/")
    page.fill("input[name=username]", STAFF)
    page.fill("input[name=password]", "x")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    page.goto(embedded_stack.base_url + listing)
    shots(page, "console-organizations-1366")
    # The admin scrolls a table too wide for its column inside its own box.
    hidden = page.evaluate(
        "() => { const r = document.querySelector('.results');"
        " return r.scrollWidth - r.clientWidth; }"
    )
    assert hidden <= 0, f"{hidden} px of the list are hidden to the right"
    row = page.locator("#result_list tr", has_text="Console shot A")
    text = row.inner_text()
    assert "Team" in text and "1.5 MB" in text and "5 GB" in text and "1 h 2 min" in text
    headers = page.inner_text("#result_list thead")
    for column in ("Plan", "Members", "Storage used", "GPU this month", "Last activity"):
        assert column.lower() in headers.lower(), column

    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "change_plan")
    page.click("button[name=index]")
    page.wait_for_selector("select[name=plan]")
    shots(page, "console-change-plan-1366")
    page.select_option("select[name=plan]", "enterprise")
    page.click("input[type=submit][value='Change plan']")
    page.wait_for_selector(".messagelist")
    assert "Moved 1 organization to the Enterprise plan." in page.inner_text(".messagelist")
    assert "Enterprise" in page.locator("#result_list tr", has_text="Console shot A").inner_text()
    checked = embedded_stack.manage("shell", "-c", CHECK_PLAN).strip().splitlines()[-1]
    assert checked.split() == ["enterprise", "1"]

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(embedded_stack.base_url + listing)
    page.wait_for_selector("#result_list")
    shots(page, "console-organizations-390")
    page.locator("#result_list a", has_text="Console shot A").click()
    page.wait_for_selector("#quota-group")
    shots(page, "console-organization-390")
    assert "Plan and quotas" in page.inner_text("#quota-group")
    assert not violations, violations
    context.close()
