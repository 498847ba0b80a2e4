"""A viewer in a real browser (Debian's Chromium via Playwright), under the portal's CSP: they see
the organization's datasets but no upload form and no way to change a version, and a POST sent
straight to the page or the API is refused with 403 naming the role needed, with nothing made.
Screenshots at 1366 px and 390 px go to $LEPTON_SCREENSHOTS (or the test's temporary folder)."""

from __future__ import annotations

import pytest

from tests.e2e.test_evaluation_browser import PASSWORD, signup, upload
from tests.support.shapes import make_class_zip

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

OWNER = "owner@read-only.example"
VIEWER = "viewer@read-only.example"

# Run by the stack's own manage.py, so the membership lands in the database the web server reads.
ADD_VIEWER = f"""
from apps.accounts.models import User
from apps.tenants.models import Membership, Role
owner = User.objects.get(email="{OWNER}")
organization = owner.memberships.get().organization
viewer = User.objects.create_user(email="{VIEWER}", password="{PASSWORD}")
Membership.objects.create(user=viewer, organization=organization, role=Role.VIEWER)
"""


def test_a_viewer_sees_datasets_but_cannot_upload_or_change_them(embedded_stack, chromium, shots):
    base = embedded_stack.base_url
    api = signup(base, OWNER)
    version = upload(api, base, "Read-only shapes", make_class_zip(per_class=12), "s.zip", "image")
    embedded_stack.manage("shell", "-c", ADD_VIEWER)

    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", VIEWER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/datasets/")
    assert page.get_by_role("link", name="Read-only shapes").is_visible()
    assert page.locator("[data-testid=upload-form]").count() == 0
    assert "You are a viewer here" in page.locator("[data-testid=read-only]").inner_text()
    assert page.get_by_role("link", name="API keys").count() == 0
    shots(page, "roles-viewer-datasets-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    shots(page, "roles-viewer-datasets-390")
    page.set_viewport_size({"width": 1366, "height": 900})

    page.get_by_role("link", name="Read-only shapes").click()
    page.wait_for_selector("[data-testid=health]")
    assert page.locator("[data-testid=derive-form]").count() == 0
    assert page.locator("[data-testid=delete-dataset]").count() == 0
    assert page.locator("[data-testid=train-link]").count() == 0
    assert page.locator("[data-testid=download]").is_visible()  # reading is allowed
    shots(page, "roles-viewer-version-1366")

    # A form the page does not offer, posted anyway: refused, naming the role needed.
    csrf = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    headers = {"X-CSRFToken": csrf, "Referer": f"{base}/datasets/"}
    posted = context.request.post(
        f"{base}/datasets/",
        multipart={"name": "sneaky", "kind": "image"},
        headers=headers,
    )
    assert posted.status == 403
    assert "This needs the member role; you are viewer." in posted.text()
    deleted = context.request.post(
        f"{base}/datasets/{version['dataset']}/delete/",
        form={"confirm_name": "Read-only shapes"},
        headers=headers,
    )
    assert deleted.status == 403
    by_api = context.request.post(
        f"{base}/api/v1/datasets/", multipart={"name": "sneaky"}, headers=headers
    )
    assert by_api.status == 403
    assert by_api.json()["error"]["message"] == "This needs the member role; you are viewer."

    names = [d["name"] for d in api.get(f"{base}/api/v1/datasets/", timeout=30).json()["results"]]
    assert names == ["Read-only shapes"]
    assert not violations, violations
    context.close()
