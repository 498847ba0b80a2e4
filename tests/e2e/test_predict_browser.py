"""A regression endpoint's "Try it" form in a real browser (Debian's Chromium via Playwright) on
the embedded stack, after a real training run on the worker: the value the page shows is the
one the API gives for the same row, a missing value is sent as null, text that is no number is
caught naming its column, and what the API refuses is shown with the API's message; then the
endpoint and the model are deleted on their pages.
Screenshots go to $LEPTON_SCREENSHOTS (or the test's temporary folder)."""

from __future__ import annotations

import pytest

from tests.e2e.browser import wait_for_js
from tests.e2e.test_evaluation_browser import (
    finished,
    logged_in,
    market_csv,
    signup,
    train,
    upload,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_a_regression_endpoint_predicts_the_row_typed_into_its_page(
    embedded_stack, chromium, shots
):
    base = embedded_stack.base_url
    email = "owner@try-rows.example"
    api = signup(base, email)
    table = upload(api, base, "Shop prices", market_csv(), "prices.csv", "tabular")
    confirmed = api.post(
        f"{base}/api/v1/dataset-versions/{table['id']}/confirm/", json={"target": "price"}
    )
    assert confirmed.status_code == 200, confirmed.text
    run = train(api, base, table, "Price model", "linear", epochs=40)
    finished(api, base, run, embedded_stack)
    model_version = api.get(f"{base}/api/v1/runs/{run}/evaluation/", timeout=30).json()
    endpoint = api.post(
        f"{base}/api/v1/endpoints/", json={"model_version": model_version["id"]}, timeout=30
    )
    assert endpoint.status_code == 201, endpoint.text
    endpoint = endpoint.json()
    predict_url = base + endpoint["predict_url"]

    context, page = logged_in(chromium, base, email)
    page.goto(f"{base}/endpoints/{endpoint['id']}/")
    form = page.locator("[data-testid=try-row-form]")
    assert sorted(
        form.locator("[data-kind]").evaluate_all("(fields) => fields.map((f) => f.name)")
    ) == ["district", "floor_area", "footfall"]

    def predicted() -> float:
        result = page.locator("[data-testid=try-row-result]")
        result.locator("[data-testid=predicted-value]").wait_for()
        return float(result.locator("[data-testid=predicted-value]").get_attribute("data-value"))

    # A row typed in: the value shown is the API's for the same row.
    form.locator("[name=floor_area]").fill("120.5")
    form.locator("[name=footfall]").fill("2400")
    form.locator("[name=district]").fill("harbour")
    form.get_by_role("button", name="Predict").click()
    shown = predicted()
    row = {"floor_area": 120.5, "footfall": 2400, "district": "harbour"}
    expected = api.post(predict_url, json={"row": row}, timeout=30).json()
    assert shown == pytest.approx(expected["predictions"][0]["value"])
    # The rule behind the data: 3.2 per square metre, 0.05 per visitor, 90 for the harbour.
    assert shown == pytest.approx(3.2 * 120.5 + 0.05 * 2400 + 90, abs=60)
    assert "price" in page.locator("[data-testid=try-row-result]").inner_text()
    shots(page, "predict-01-try-a-row", "[data-testid=try-row]")

    # A field left empty is a missing value (null), which the model fills in as in training.
    page.evaluate("document.querySelector('[data-testid=try-row-result]').replaceChildren()")
    form.locator("[name=footfall]").fill("")
    form.get_by_role("button", name="Predict").click()
    missing = api.post(predict_url, json={"row": row | {"footfall": None}}, timeout=30).json()
    assert predicted() == pytest.approx(missing["predictions"][0]["value"])

    # Text that is no number is caught in the page, naming the column.
    form.locator("[name=floor_area]").fill("1e400")
    form.get_by_role("button", name="Predict").click()
    error = page.locator("[data-testid=try-row-result] .msg.error")
    error.wait_for()
    assert "floor_area: not a number" in error.inner_text()
    shots(page, "predict-02-not-a-number", "[data-testid=try-row]")

    # What the API refuses is shown with the API's own message: here, a paused endpoint.
    embedded_stack.manage(
        "shell",
        "-c",
        "from apps.deployments.models import Endpoint; "
        f"Endpoint.all_tenants.filter(pk='{endpoint['id']}').update(is_active=False)",
    )
    form.locator("[name=floor_area]").fill("80")
    form.get_by_role("button", name="Predict").click()
    wait_for_js(
        page,
        "document.querySelector('[data-testid=try-row-result]').textContent.includes('paused')",
    )
    assert "Activate it before sending predictions" in error.inner_text()

    # Done with it: delete the endpoint on its page, then the model on its run page.
    delete = page.locator("[data-testid=delete-endpoint]")
    delete.locator("[data-testid=delete-confirm]").fill(endpoint["name"])
    delete.get_by_role("button", name="Delete endpoint").click()
    page.wait_for_url(f"{base}/endpoints/")
    assert "calls to it now answer 404" in page.locator(".msg.success").inner_text()
    assert api.post(predict_url, json={"row": row}, timeout=30).status_code == 404
    page.goto(f"{base}/models/runs/{run}/")
    delete = page.locator("[data-testid=delete-model]")
    delete.locator("[data-testid=delete-confirm]").fill("Price model")
    shots(page, "predict-03-delete-model", "[data-testid=delete-model]")
    delete.get_by_role("button", name="Delete model").click()
    page.wait_for_url(f"{base}/models/")
    assert "Deleted the model 'Price model'" in page.locator(".msg.success").inner_text()
    assert page.locator("[data-testid=run-row]").count() == 0
    context.close()
