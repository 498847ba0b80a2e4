"""A predict-only key made on the API-keys page in a real browser (Debian's Chromium via
Playwright), limited to one endpoint and with an expiry, then used: it predicts, and is refused
reading, deleting and minting keys, each with the scope it lacks. The page runs under the
Content-Security-Policy with no violation."""

from __future__ import annotations

import datetime

import pytest
import requests

from tests.e2e.test_evaluation_browser import (
    finished,
    logged_in,
    market_csv,
    signup,
    train,
    upload,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def regression_endpoint(api: requests.Session, base: str, stack) -> dict:
    table = upload(api, base, "Shop prices", market_csv(), "prices.csv", "tabular")
    confirmed = api.post(
        f"{base}/api/v1/dataset-versions/{table['id']}/confirm/", json={"target": "price"}
    )
    assert confirmed.status_code == 200, confirmed.text
    run = train(api, base, table, "Price model", "linear", epochs=20)
    finished(api, base, run, stack)
    model_version = api.get(f"{base}/api/v1/runs/{run}/evaluation/", timeout=30).json()
    endpoint = api.post(
        f"{base}/api/v1/endpoints/", json={"model_version": model_version["id"]}, timeout=30
    )
    assert endpoint.status_code == 201, endpoint.text
    return endpoint.json() | {"dataset": table["dataset"]}


def test_a_predict_only_key_made_in_the_page_predicts_and_nothing_more(
    embedded_stack, chromium, shots
):
    base = embedded_stack.base_url
    email = "owner@scoped-keys.example"
    api = signup(base, email)
    endpoint = regression_endpoint(api, base, embedded_stack)

    context, page = logged_in(chromium, base, email)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{base}/accounts/api-keys/")
    form = page.locator("[data-testid=create-key]")
    form.locator("input[name=name]").fill("kiosk")
    form.locator("input[name=scopes][value=read]").uncheck()
    form.locator("input[name=scopes][value=write]").uncheck()
    assert form.locator("input[name=scopes][value=predict]").is_checked()
    form.locator(f"input[name=endpoints][value='{endpoint['id']}']").check()
    expiry = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    form.locator("input[name=expires_on]").fill(expiry)
    form.get_by_role("button", name="Create key").click()
    page.wait_for_url(f"{base}/accounts/api-keys/")
    raw = page.locator("#new-key-value").inner_text().strip()
    assert raw.startswith("lp_")
    row = page.locator("[data-testid=keys] tr", has_text="kiosk")
    assert "predict" in row.inner_text()
    assert endpoint["name"] in row.inner_text()
    shots(page, "api-keys-predict-only")

    key = {"Authorization": f"Bearer {raw}"}
    predicted = requests.post(
        base + endpoint["predict_url"],
        json={"row": {"floor_area": 80, "footfall": 1200, "district": "harbour"}},
        headers=key,
        timeout=30,
    )
    assert predicted.status_code == 200, predicted.text
    listed = requests.get(f"{base}/api/v1/datasets/", headers=key, timeout=30)
    assert listed.status_code == 403
    assert listed.json()["error"]["message"].startswith("This key lacks the read scope")
    deleted = requests.delete(
        f"{base}/api/v1/datasets/{endpoint['dataset']}/", headers=key, timeout=30
    )
    assert deleted.status_code == 403
    assert deleted.json()["error"]["message"].startswith("This key lacks the write scope")
    minted = requests.post(f"{base}/api/v1/api-keys/", json={"name": "x"}, headers=key, timeout=30)
    assert minted.status_code == 403
    assert minted.json()["error"]["message"].startswith("API keys cannot manage keys")

    page.reload()
    assert (
        page.locator("[data-testid=keys] tr", has_text="kiosk").locator("td").nth(6).inner_text()
        != "—"
    )
    assert violations == []
    context.close()
