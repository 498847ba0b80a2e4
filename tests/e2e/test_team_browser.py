"""Team in a real browser (Debian's Chromium via Playwright), under the portal's CSP: an owner
invites a new person from the members page, the person follows the link from the message the
running stack wrote to its mail folder, signs up through it and lands in the organization; the
owner then changes their role."""

from __future__ import annotations

import pytest

from tests.support.mail import wait_for_link

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Corr3ct-horse-battery"
OWNER = "owner@team-browser.example"
INVITEE = "new.colleague@team-browser.example"
ORGANIZATION = "Team Browser Labs"


def _watch_csp(page, violations: list[str]) -> None:
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)


def test_an_invited_person_signs_up_through_the_emailed_link_and_gets_a_new_role(
    embedded_stack, chromium, shots
):
    base = embedded_stack.base_url
    violations: list[str] = []
    owner_context = chromium.new_context(viewport={"width": 1366, "height": 900})
    owner = owner_context.new_page()
    owner.set_default_timeout(30_000)
    _watch_csp(owner, violations)
    owner.goto(f"{base}/accounts/signup/")
    owner.fill("input[name=organization_name]", ORGANIZATION)
    owner.fill("input[name=email]", OWNER)
    owner.fill("input[name=password]", PASSWORD)
    owner.click("button[type=submit]")
    owner.wait_for_url(f"{base}/")

    owner.goto(f"{base}/organization/members/")
    invite_form = owner.locator("[data-testid=invite]")
    invite_form.locator("input[name=email]").fill(INVITEE)
    invite_form.locator("select[name=role]").select_option("member")
    invite_form.get_by_role("button", name="Send invitation").click()
    owner.wait_for_url("**/organization/members/")
    assert f"An invitation was sent to {INVITEE}" in owner.content()
    pending = owner.locator(f"[data-testid=invitation][data-email='{INVITEE}']")
    assert pending.is_visible() and OWNER in pending.inner_text()

    link = wait_for_link(
        embedded_stack.data_dir / "mail", INVITEE, r"https?://\S+/invitations/[\w-]+/"
    )
    assert link.startswith(f"{base}/invitations/")

    # The invitee: a fresh browser with no session, as someone opening their mail.
    invitee_context = chromium.new_context(viewport={"width": 390, "height": 844})
    invitee = invitee_context.new_page()
    invitee.set_default_timeout(30_000)
    _watch_csp(invitee, violations)
    invitee.goto(link)
    assert f"Join {ORGANIZATION}" in invitee.locator("h1").inner_text()
    email_box = invitee.locator("[data-testid=invitation-signup] input[type=email]")
    assert email_box.input_value() == INVITEE
    assert email_box.get_attribute("readonly") is not None
    shots(invitee, "team-invitation-accept-390")
    invitee.fill("input[name=password]", PASSWORD)
    invitee.get_by_role("button", name="Sign up and join").click()
    invitee.wait_for_url(f"{base}/")
    assert invitee.locator("[data-testid=org-name]").inner_text() == ORGANIZATION
    assert f"Welcome to {ORGANIZATION}! You joined as Member." in invitee.content()
    invitee.goto(f"{base}/datasets/")
    assert invitee.locator("[data-testid=org-name]").inner_text() == ORGANIZATION

    # The link was spent.
    invitee.goto(link)
    assert "already used" in invitee.locator("[data-testid=form-error]").inner_text()

    # The owner sees the new member and makes them an admin.
    owner.goto(f"{base}/organization/members/")
    row = owner.locator(f"[data-testid=member][data-email='{INVITEE}']")
    assert row.is_visible()
    assert owner.locator(f"[data-testid=invitation][data-email='{INVITEE}']").count() == 0
    invite_form.locator("input[name=email]").fill("later@team-browser.example")
    invite_form.locator("select[name=role]").select_option("admin")
    invite_form.get_by_role("button", name="Send invitation").click()
    owner.wait_for_url("**/organization/members/")
    assert owner.locator("[data-testid=invitation]").count() == 1
    shots(owner, "team-members-1366")
    row.locator("select[name=role]").select_option("admin")
    row.get_by_role("button", name="Change role").click()
    owner.wait_for_url("**/organization/members/")
    assert f"{INVITEE} is now Admin." in owner.content()
    row = owner.locator(f"[data-testid=member][data-email='{INVITEE}']")
    assert row.locator("select[name=role]").input_value() == "admin"

    owner.set_viewport_size({"width": 390, "height": 844})
    shots(owner, "team-members-390")

    # The new admin sees the management forms now (after a reload of their page).
    invitee.goto(f"{base}/organization/members/")
    assert invitee.get_by_role("button", name="Send invitation").is_visible()
    assert violations == []
    invitee_context.close()
    owner_context.close()
