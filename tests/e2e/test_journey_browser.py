"""The customer's journey in a real browser (Debian's Chromium via Playwright), steps 1-7 of the
walking skeleton, plus the platform admin. Screenshots of each page go to $LEPTON_SCREENSHOTS
(or the test's temporary folder)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.support.shapes import image_bytes, make_class_zip, make_shape_image

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Corr3ct-horse-battery"
ADMIN_PASSWORD = "Adm1n-password-for-tests"


def test_it_runs_the_whole_journey_in_a_browser(embedded_stack, chromium, shots):
    base = embedded_stack.base_url
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    # Every page must keep to the Content-Security-Policy; the run page polls a fragment.
    violations: list[str] = []
    polls: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.on("request", lambda r: polls.append(r.url) if "fragment=live" in r.url else 0)

    # 1. Sign up: creates the organization; log out and back in.
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=organization_name]", "Acme Browser")
    page.fill("input[name=email]", "owner@browser.example")
    page.fill("input[name=password]", "short")
    page.click("button[type=submit]")
    assert "too short" in page.locator("[data-testid=form-error]").inner_text()
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert page.locator("[data-testid=org-name]").inner_text() == "Acme Browser"
    shots(page, "01-home")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    page.fill("input[name=username]", "owner@browser.example")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert page.locator("[data-testid=form-error]").is_visible()
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    # 2. An API key, shown once.
    page.click("nav >> text=API keys")
    page.fill("input[name=name]", "shop backend")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").inner_text()
    assert key.startswith("lp_")
    shots(page, "02-api-key")
    page.reload()
    assert page.locator("#new-key-value").count() == 0
    assert "shop backend" in page.locator("table").inner_text()

    # 3. Upload a zip of class folders; a bad file gets a clear error first.
    page.click("nav >> text=Datasets")
    page.fill("input[name=name]", "Shapes")
    page.set_input_files(
        "input[name=file]",
        files=[{"name": "photos.zip", "mimeType": "application/zip", "buffer": b"not a zip"}],
    )
    page.get_by_role("button", name="Upload").click()
    assert "is not a zip archive" in page.locator("[data-testid=form-error]").inner_text()
    archive = make_class_zip(per_class=40, seed=5, extra_entries={"circle/notes.txt": b"hi"})
    page.set_input_files(
        "input[name=file]",
        files=[{"name": "shapes.zip", "mimeType": "application/zip", "buffer": archive}],
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/datasets/versions/**")
    page.wait_for_selector("[data-testid=class-counts]", timeout=120_000)
    assert page.locator("[data-testid=ingestion] .badge").inner_text() == "Ready"
    counts = page.locator("[data-testid=class-counts] tbody tr")
    assert counts.count() == 3
    assert "notes.txt" in page.locator("[data-testid=skipped]").inner_text()
    shots(page, "03-dataset")

    # 4. Configure LeptonNet on that version and start training.
    page.click("[data-testid=train-link]")
    page.fill("input[name=name]", "Shape sorter")
    page.fill("input[name=epochs]", "999")
    page.get_by_role("button", name="Start training").click()
    # The portal refuses an out-of-range value beside its field and says what is allowed.
    error = page.locator("[data-testid=field-error-epochs]").inner_text()
    assert "epochs must be a whole number between 1 and 200; got '999'" in error
    assert "/models/new/" in page.url
    page.fill("input[name=name]", "Shape sorter")
    page.fill("input[name=epochs]", "15")
    page.fill("input[name=batch_size]", "16")
    page.fill("input[name=learning_rate]", "0.005")
    shots(page, "04-configure")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/models/runs/**")

    # 5. The run page updates without reloading while the worker trains.
    page.evaluate("window.__sameDocument = true")
    seen, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline:
        state = (
            page.locator("[data-testid=run-status]").inner_text(),
            page.locator("[data-testid=run-progress]").inner_text(),
            page.locator("[data-testid=run-epoch]").inner_text(),
        )
        if not seen or seen[-1] != state:
            seen.append(state)
            if len(seen) == 3:
                shots(page, "05-run-live")
        if state[0] in ("Succeeded", "Failed"):
            break
        time.sleep(0.2)
    assert seen[-1][0] == "Succeeded", seen
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert len(polls) >= 2
    intermediate = [s for s in seen if s[0] == "Running" and s[1] not in ("0 %", "0%", "100%")]
    assert intermediate, f"never saw progress between 0 and 100 %: {seen}"
    assert len({s[2] for s in seen}) >= 3, f"the epoch never moved: {seen}"

    # 6. The evaluation appears in place: accuracy, per-class table, confusion matrix.
    page.wait_for_selector("[data-testid=evaluation]")
    accuracy = float(page.locator("[data-testid=eval-accuracy]").get_attribute("data-value"))
    assert accuracy > 0.9
    assert page.locator("[data-testid=per-class] tbody tr").count() == 3
    assert page.locator("[data-testid=confusion] tbody tr").count() == 3
    shots(page, "06-evaluation")

    # 7. Deploy, then POST an image from the endpoint page.
    page.click("[data-testid=deploy]")
    page.wait_for_url("**/endpoints/**")
    picture = image_bytes(make_shape_image("triangle", np.random.default_rng(77)))
    page.set_input_files(
        "[data-testid=try-form] input[name=image]",
        files=[{"name": "triangle.png", "mimeType": "image/png", "buffer": picture}],
    )
    page.click("[data-testid=try-form] button")
    page.wait_for_selector("[data-testid=try-result] li")
    top = page.locator("[data-testid=try-result] li").first.get_attribute("data-label")
    assert top in ("circle", "square", "triangle")
    assert page.locator("[data-testid=try-result] li").count() == 3
    shots(page, "07-endpoint")
    endpoint_url = page.url
    page.goto(f"{base}/models/")
    run_url = page.locator("table a").first.get_attribute("href")

    # Another organization's user reaches none of it.
    other = chromium.new_context().new_page()
    other.goto(f"{base}/accounts/signup/")
    other.fill("input[name=organization_name]", "Rival")
    other.fill("input[name=email]", "rival@browser.example")
    other.fill("input[name=password]", PASSWORD)
    other.click("button[type=submit]")
    other.wait_for_url(f"{base}/")
    assert other.goto(f"{base}{run_url}").status == 404
    other.goto(f"{base}/datasets/")
    assert "Shapes" not in other.content()
    assert other.goto(endpoint_url).status == 404

    # 8. The platform admin sees organizations, memberships, datasets, runs and endpoints.
    embedded_stack.env["LEPTON_DEMO_PASSWORD"] = ADMIN_PASSWORD
    embedded_stack.manage("demo_setup")
    admin = chromium.new_context().new_page()
    admin.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    admin.goto(f"{base}/admin/")
    admin.fill("input[name=username]", "admin@lepton.localhost")
    admin.fill("input[name=password]", ADMIN_PASSWORD)
    admin.click("input[type=submit]")
    for path, expected in (
        ("tenants/organization/", "Acme Browser"),
        ("tenants/membership/", "owner@browser.example"),
        ("datasets/dataset/", "Shapes"),
        ("training/trainingrun/", "Shape sorter"),
        ("deployments/endpoint/", "Shape sorter v1"),
    ):
        admin.goto(f"{base}/admin/{path}")
        assert expected in admin.content(), path
    shots(admin, "08-admin")
    admin.goto(f"{base}/admin/training/trainingrun/")
    admin.locator("#result_list tbody a").first.click()
    admin.wait_for_selector("#content-main form")
    assert not violations, violations
    context.close()
