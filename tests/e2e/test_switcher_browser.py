"""Several organizations in a real browser (Debian's Chromium via Playwright) under the portal's
CSP: create a second organization from the header's menu, then switch between the two and see
each one's datasets. Screenshots of the open menu at 1366 and 390 px go to $LEPTON_SCREENSHOTS
(or the test's temporary folder)."""

from __future__ import annotations

import pytest

from tests.support.shapes import make_class_zip

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Corr3ct-horse-battery"
EMAIL = "owner@two-orgs.example"
#: how far right the header or anything in it reaches, in CSS pixels
HEADER_RIGHT_EDGE = """() => Math.max(
  ...[...document.querySelectorAll("header.topbar, header.topbar *")]
    .map((e) => e.getBoundingClientRect().right))"""


def open_menu(page) -> None:
    page.locator("[data-testid=org-switcher] > summary").click()
    page.wait_for_selector("[data-testid=org-switcher] .menu", state="visible")


def switch_to(page, name: str) -> None:
    open_menu(page)
    page.locator("[data-testid=org-list] button", has_text=name).click()
    page.wait_for_selector(f"[data-testid=org-name]:text-is('{name}')")


def upload(page, base: str, name: str, seed: int) -> None:
    page.goto(f"{base}/datasets/")
    page.fill("input[name=name]", name)
    archive = make_class_zip(per_class=4, seed=seed)
    page.set_input_files(
        "input[name=file]",
        files=[{"name": "shapes.zip", "mimeType": "application/zip", "buffer": archive}],
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/datasets/versions/**")


def dataset_names(page) -> str:
    return page.locator("table.table tbody").inner_text()


def test_a_person_in_two_organizations_switches_in_the_header(embedded_stack, chromium, shots):
    base = embedded_stack.base_url
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)

    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=organization_name]", "Alpha Optics")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    upload(page, base, "Alpha photos", seed=1)

    # A second organization, from the menu: its creator owns it and works in it at once.
    open_menu(page)
    assert page.locator("[data-testid=org-list] li").count() == 1
    page.get_by_role("link", name="Create organization").click()
    page.wait_for_url("**/accounts/organizations/new/")
    page.get_by_role("button", name="Create organization").click()
    assert "Name the organization" in page.locator("[data-testid=form-error]").inner_text()
    page.fill("input[name=name]", "Beta Optics")
    page.select_option("select[name=region]", "us")
    shots(page, "organization-new")
    page.get_by_role("button", name="Create organization").click()
    page.wait_for_url(f"{base}/")
    assert page.locator("[data-testid=org-name]").inner_text() == "Beta Optics"
    page.goto(f"{base}/datasets/")
    assert "Alpha photos" not in dataset_names(page)
    upload(page, base, "Beta photos", seed=2)

    # From a dataset of Beta's, to Alpha: the page lands on the datasets list, not on an id
    # that would be missing there.
    open_menu(page)
    items = page.locator("[data-testid=org-list] li")
    assert items.count() == 2
    assert "Owner" in items.nth(0).inner_text() and "Owner" in items.nth(1).inner_text()
    assert (
        page.locator("[data-testid=org-list] [aria-current=true]")
        .inner_text()
        .startswith("Beta Optics")
    )
    shots(page, "switcher-open-1366")
    page.locator("[data-testid=org-list] button", has_text="Alpha Optics").click()
    page.wait_for_url(f"{base}/datasets/")
    assert page.locator("[data-testid=org-name]").inner_text() == "Alpha Optics"
    assert "You are now working in Alpha Optics." in page.locator(".messages").inner_text()
    names = dataset_names(page)
    assert "Alpha photos" in names and "Beta photos" not in names

    # A click elsewhere closes the menu (static/js/orgmenu.js); Escape does too.
    open_menu(page)
    page.locator("h1").click()
    assert page.locator("[data-testid=org-switcher]").get_attribute("open") is None
    open_menu(page)
    page.keyboard.press("Escape")
    assert page.locator("[data-testid=org-switcher]").get_attribute("open") is None

    # At 390 px the header wraps without overflowing, and the open menu stays on screen.
    page.set_viewport_size({"width": 390, "height": 844})
    open_menu(page)
    shots(page, "switcher-open-390")
    assert page.evaluate(HEADER_RIGHT_EDGE) <= 390
    box = page.locator("[data-testid=org-switcher] .menu").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.keyboard.press("Escape")
    logout = page.get_by_role("button", name="Log out").bounding_box()
    assert logout["x"] + logout["width"] <= 390
    switch_to(page, "Beta Optics")
    names = dataset_names(page)
    assert "Beta photos" in names and "Alpha photos" not in names
    assert violations == []
    context.close()
