"""Training in a real browser (Debian's Chromium via Playwright) against real gunicorn and a real
Celery worker: configure a model from a template, watch the run page change without reloading
(steps, epochs, curves, log), read the evaluation at the end; cancel a running run and train
again on the same worker. Screenshots go to $LEPTON_SCREENSHOTS (or the test's temporary
folder), the run page also at 390 and 1366 px wide.

The run page's values are rendered on the server and swapped in by htmx; the page must raise no
Content-Security-Policy violation, and must show its values with JavaScript turned off."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.e2e.browser import wait_for_js
from tests.support.shapes import make_class_zip

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Corr3ct-horse-battery"
FINISHED = ("Succeeded", "Failed", "Cancelled")

LIVE_STATE = """() => {
  const text = (id) => document.querySelector(`[data-testid=${id}]`)?.textContent.trim();
  return {
    status: text("run-status"),
    progress: text("run-progress"),
    step: text("run-step"),
    epoch: text("run-epoch"),
    loss: text("run-loss"),
    eta: text("run-eta"),
    points: document.querySelectorAll("[data-testid=curve-loss] circle.point.train").length,
    logLines: (text("run-log") || "").split("\\n").filter(Boolean).length,
    cancelHidden: document.querySelector("[data-testid=cancel-form]").hidden,
    sameDocument: window.__sameDocument === true,
  };
}"""


@pytest.fixture(scope="module")
def account(embedded_stack, chromium):
    """A signed-up organization with a ready image dataset; the browser's login, to reuse."""
    base = embedded_stack.base_url
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=organization_name]", "Acme Trainers")
    page.fill("input[name=email]", "trainer@browser.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/datasets/")
    page.fill("input[name=name]", "Shapes")
    archive = make_class_zip(per_class=40, seed=11)
    page.set_input_files(
        "input[name=file]",
        files=[{"name": "shapes.zip", "mimeType": "application/zip", "buffer": archive}],
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/datasets/versions/**")
    page.wait_for_selector("[data-testid=class-counts]", timeout=120_000)
    state = context.storage_state()
    context.close()
    return state


class Observed:
    """What a page did besides rendering: its live polls and any CSP violation it reported."""

    def __init__(self, page) -> None:
        self.polls: list[str] = []
        self.violations: list[str] = []
        page.on("request", self._request)
        page.on("console", self._console)

    def _request(self, request) -> None:
        if "fragment=live" in request.url:
            self.polls.append(request.url)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(message.text)


@pytest.fixture
def observed() -> dict:
    return {}


@pytest.fixture
def page(chromium, account, observed):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, storage_state=account)
    page = context.new_page()
    page.set_default_timeout(30_000)
    observed["page"] = Observed(page)
    yield page
    context.close()
    assert not observed["page"].violations, observed["page"].violations


def run_api(page, base: str) -> dict:
    """The run API as the page's session sees it."""
    run_id = re.search(r"/models/runs/([0-9a-f-]+)/", page.url).group(1)
    response = page.request.get(f"{base}/api/v1/runs/{run_id}/")
    assert response.ok, response.text()
    return json.loads(response.text())


def configure(page, base: str, *, name: str, epochs: int, template: str = "leptonnet-m") -> None:
    page.goto(f"{base}/models/new/")
    page.click(f"[data-testid=template-{template}]")
    wait_for_js(
        page, f"document.querySelector('[data-testid=knobs]').dataset.template === '{template}'"
    )
    page.fill("input[name=name]", name)
    page.fill("input[name=epochs]", str(epochs))


def watch(page, until, timeout: float = 240) -> list[dict]:
    """Every distinct state the live page shows, sampled five times a second, until `until`."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.evaluate(LIVE_STATE)
        if not seen or seen[-1] != state:
            seen.append(state)
        if until(state, seen):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"the page never got there; it showed: {seen[-5:]}")


def test_it_configures_a_model_and_watches_it_train_live(embedded_stack, page, observed, shots):
    base = embedded_stack.base_url
    page.goto(f"{base}/models/new/")
    page.evaluate("window.__sameDocument = true")

    # Choosing a template swaps in its settings and the datasets it can learn from, in place.
    page.click("[data-testid=template-linear]")
    page.wait_for_selector("[data-testid=no-fitting-versions]")
    assert page.locator("input[name=hidden_size]").count() == 0
    assert page.locator("input[name=template]").input_value() == "linear"
    page.click("[data-testid=template-resnet18]")
    page.wait_for_selector("input[name=pretrained][type=checkbox]")
    assert page.locator("select[name=dataset_version] option").count() == 1
    page.click("[data-testid=template-leptonnet-m]")
    wait_for_js(page, "!document.querySelector('input[name=pretrained]')")
    assert page.locator("input[name=input_size]").input_value() == "64"
    assert page.evaluate("window.__sameDocument") is True, "switching template reloaded"
    assert "template=leptonnet-m" in page.url
    assert page.locator("[data-testid=template-leptonnet-m]").get_attribute("aria-current")

    # A refused value comes back beside its field, as typed, with the other values kept.
    page.fill("input[name=name]", "Shape sorter M")
    page.fill("input[name=epochs]", "0")
    page.fill("input[name=batch_size]", "8")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_selector("[data-testid=field-error-epochs]")
    error = page.locator("[data-testid=field-error-epochs]").inner_text()
    assert "epochs must be a whole number between 1 and 200" in error
    assert page.locator("input[name=epochs]").input_value() == "0"
    assert page.locator("input[name=batch_size]").input_value() == "8"
    assert page.locator("input[name=name]").input_value() == "Shape sorter M"
    assert page.locator("input[name=template]").input_value() == "leptonnet-m"
    assert "epochs must be" in page.locator("[data-testid=form-error]").inner_text()
    shots(page, "training-01-form-error")

    # Settings: a number, two selects and a checkbox in the folded augmentation group.
    page.fill("input[name=epochs]", "12")
    page.fill("input[name=learning_rate]", "0.01")
    page.select_option("select[name=schedule]", "cosine")
    page.select_option("select[name=optimizer]", "adamw")
    page.click("[data-testid=group-augmentation] summary")
    assert page.locator("input[name=flip][type=checkbox]").is_checked()
    page.uncheck("input[name=flip][type=checkbox]")
    page.fill("input[name=brightness]", "0.1")
    shots(page, "training-01-form-filled")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/models/runs/**")

    # The run page follows the worker without reloading.
    page.evaluate("window.__sameDocument = true")
    taken = []

    def finished(state: dict, _seen: list) -> bool:
        if not taken and state["status"] == "Running" and state["points"] >= 3:
            taken.append(shots(page, "training-02-run-live"))
            for width in (390, 1366):
                page.set_viewport_size({"width": width, "height": 900})
                shots(page, f"training-02-run-live-{width}")
            page.set_viewport_size({"width": 1280, "height": 900})
        return state["status"] in FINISHED

    seen = watch(page, finished)
    shots(page, "training-03-finished")
    running = [s for s in seen if s["status"] == "Running"]
    assert seen[-1]["status"] == "Succeeded", seen[-5:]
    assert all(s["sameDocument"] for s in seen[1:]), "the page reloaded"
    assert len({s["step"] for s in running}) >= 3, f"the step never moved: {running}"
    assert len({s["epoch"] for s in running}) >= 3, f"the epoch never moved: {running}"
    assert any(s["progress"] not in ("0%", "100%") for s in running), running
    assert any(s["eta"] not in ("—", "") for s in running), running
    # Curve points appear as epochs end, and the log grows, both while it runs.
    first, last = running[0], running[-1]
    assert last["points"] > first["points"], running
    assert last["logLines"] > first["logLines"], running
    assert not any(s["cancelHidden"] for s in running)

    # The end: evaluation in place, Cancel gone, the curve complete, polling stopped.
    page.wait_for_selector("[data-testid=evaluation]")
    wait_for_js(
        page,
        "document.querySelectorAll('[data-testid=curve-loss] circle.point.train').length === 12",
    )
    final = page.evaluate(LIVE_STATE)
    assert final["cancelHidden"] is True
    assert final["progress"] == "100%"
    assert final["eta"] == "—"
    assert final["sameDocument"] is True
    polls = len(observed["page"].polls)
    assert polls >= 3, "it did not poll"
    time.sleep(2.5)
    assert len(observed["page"].polls) == polls, "it kept polling"
    assert "Done:" in page.locator("[data-testid=run-log]").inner_text()
    for width in (390, 1366):
        page.set_viewport_size({"width": width, "height": 900})
        shots(page, f"training-03-finished-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not observed["page"].violations, observed["page"].violations

    # What was chosen in the form is what the run trained with.
    run = run_api(page, base)
    knobs = run["hyperparameters"]
    assert (knobs["epochs"], knobs["batch_size"], knobs["learning_rate"]) == (12, 8, 0.01)
    assert (knobs["schedule"], knobs["flip"], knobs["brightness"]) == ("cosine", False, 0.1)
    assert knobs["input_size"] == 64

    # The models list links to it, with its template, dataset, status and accuracy.
    page.goto(f"{base}/models/")
    row = page.locator("[data-testid=run-row]").first
    text = row.inner_text()
    assert "Shape sorter M" in text and "LeptonNet-M" in text and "Shapes" in text
    assert "Succeeded" in text and "%" in row.locator("[data-testid=run-row-score]").inner_text()
    shots(page, "training-04-list")


def test_it_cancels_a_running_run_and_the_worker_keeps_training(embedded_stack, page, shots):
    base = embedded_stack.base_url
    configure(page, base, name="Long run", epochs=200)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/models/runs/**")
    page.evaluate("window.__sameDocument = true")
    watch(page, lambda s, _: s["status"] == "Running" and s["step"] not in ("0", None))
    run_id = run_api(page, base)["id"]
    shots(page, "training-05-run-to-cancel")

    # Saying no to the confirmation leaves it running.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("[data-testid=cancel]")
    time.sleep(1)
    assert page.evaluate("window.__sameDocument") is True
    assert run_api(page, base)["status"] == "running"

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-testid=cancel]")
    page.wait_for_load_state()
    wait_for_js(
        page,
        "document.querySelector('[data-testid=run-status]').textContent.trim() === 'Cancelled'",
    )
    assert page.locator("[data-testid=cancel-form]").is_hidden()
    assert (
        "Cancelled by trainer@browser.example"
        in page.locator("[data-testid=run-message]").inner_text()
    )
    shots(page, "training-06-cancelled")

    # The worker stops the run before its next step and stores nothing.
    worker_logs = [p for p in embedded_stack.logs if p.name.startswith("worker")]
    deadline = time.monotonic() + 30
    while not any(f"run {run_id} cancelled" in p.read_text(errors="replace") for p in worker_logs):
        assert time.monotonic() < deadline, embedded_stack.log_tail()
        time.sleep(0.2)
    stopped = run_api(page, base)
    time.sleep(1.5)
    again = run_api(page, base)
    assert (again["status"], again["step"]) == ("cancelled", stopped["step"])
    assert again["step"] < again["total_steps"]
    assert again["model_version"] is None

    # ... and then trains the next run to the end.
    configure(page, base, name="After the cancel", epochs=2, template="leptonnet")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/models/runs/**")
    seen = watch(page, lambda s, _: s["status"] in FINISHED, timeout=180)
    assert seen[-1]["status"] == "Succeeded", seen[-5:]
    page.wait_for_selector("[data-testid=evaluation]")


def test_the_run_page_shows_its_values_without_javascript(embedded_stack, chromium, account, page):
    base = embedded_stack.base_url
    configure(page, base, name="Read without scripts", epochs=3, template="leptonnet")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**/models/runs/**")
    # A short run can end between two polls of the live page: either state has values to show.
    watch(
        page,
        lambda s, _: (
            s["status"] in FINISHED or (s["status"] == "Running" and s["step"] not in ("0", None))
        ),
    )
    url = page.url

    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, storage_state=account, java_script_enabled=False
    )
    try:
        plain = context.new_page()
        polls = Observed(plain)
        plain.goto(url)
        running = plain.locator("[data-testid=run-status]").inner_text()
        assert running in ("Running", "Succeeded"), running
        assert plain.locator("[data-testid=run-step]").inner_text() not in ("", "0")
        assert plain.locator("[data-testid=run-progress]").inner_text().endswith("%")
        assert plain.locator("[data-testid=run-log]").inner_text().strip()
        assert plain.locator("[data-testid=curve-loss]").count() == 1
        time.sleep(2.5)
        assert polls.polls == [], "a page without JavaScript cannot poll"
        # Reloading shows the end: the values, the curves and the evaluation, Cancel gone.
        watch(page, lambda s, _: s["status"] in FINISHED, timeout=180)
        plain.reload()
        assert plain.locator("[data-testid=run-status]").inner_text() == "Succeeded"
        assert plain.locator("[data-testid=run-progress]").inner_text() == "100%"
        assert plain.locator("[data-testid=evaluation]").count() == 1
        assert plain.locator("[data-testid=curve-loss] circle.point.train").count() == 3
        assert plain.locator("[data-testid=cancel-form]").is_hidden()
        assert not polls.violations, polls.violations
    finally:
        context.close()
