"""The evaluation and the leaderboard in a real browser (Debian's Chromium via Playwright) on the
embedded stack, after real training runs on the worker: the confusion heat map, the gallery of
mistakes with thumbnails that load, the regression chart, and the leaderboard of a dataset.
Screenshots go to $LEPTON_SCREENSHOTS (or the test's temporary folder)."""

from __future__ import annotations

import csv
import io
import time

import numpy as np
import pytest
import requests

from tests.apps.training.test_evaluation import confusable_zip
from tests.e2e.browser import wait_for_js

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Corr3ct-horse-battery"

THUMBNAILS_LOADED = """() => {
  const images = [...document.querySelectorAll("[data-testid=mistake-thumbnail]")];
  return images.length > 0 && images.every((i) => i.complete && i.naturalWidth > 0);
}"""


def wait_for(fetch, done, timeout: float = 240, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = fetch()
        if done(result):
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out; last state: {result}")


def signup(base: str, email: str) -> requests.Session:
    response = requests.post(
        f"{base}/api/v1/auth/signup/",
        json={"email": email, "password": PASSWORD, "organization_name": "Acme Evaluation"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    key = requests.post(
        f"{base}/api/v1/api-keys/", json={"name": "e2e"}, auth=(email, PASSWORD), timeout=30
    )
    assert key.status_code == 201, key.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key.json()['key']}"
    return session


def logged_in(chromium, base: str, email: str):
    """A browser context and page where `email` has logged in."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return context, page


def upload(api: requests.Session, base: str, name: str, data: bytes, filename: str, kind: str):
    response = api.post(
        f"{base}/api/v1/datasets/",
        data={"name": name, "kind": kind},
        files={"file": (filename, data)},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    url = f"{base}/api/v1/dataset-versions/{response.json()['id']}/"
    version = wait_for(
        lambda: api.get(url, timeout=30).json(),
        lambda v: v["status"] in ("succeeded", "failed"),
    )
    assert version["status"] == "succeeded", version
    return version


def train(api: requests.Session, base: str, version: dict, name: str, template: str, **knobs):
    response = api.post(
        f"{base}/api/v1/models/",
        json={
            "name": name,
            "template": template,
            "dataset_version": version["id"],
            "hyperparameters": knobs,
            "start_training": True,
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["run"]


def finished(api: requests.Session, base: str, run: str, stack) -> dict:
    body = wait_for(
        lambda: api.get(f"{base}/api/v1/runs/{run}/", timeout=30).json(),
        lambda r: r["status"] in ("succeeded", "failed", "cancelled"),
        timeout=400,
    )
    assert body["status"] == "succeeded", f"{body}\n{stack.log_tail()}"
    return body


def market_csv(rows: int = 240, seed: int = 11) -> bytes:
    """Prices of shop spaces: a linear rule of floor area, footfall and district, plus noise."""
    rng = np.random.default_rng(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["market_code", "floor_area", "footfall", "district", "price"])
    extra = {"north": 40.0, "south": 0.0, "harbour": 90.0}
    for i in range(rows):
        area = rng.uniform(20, 200)
        footfall = rng.uniform(100, 5000)
        district = ["north", "south", "harbour"][i % 3]
        price = 3.2 * area + 0.05 * footfall + extra[district] + rng.normal(0, 25)
        writer.writerow([f"M-{i:04d}", f"{area:.1f}", f"{footfall:.0f}", district, f"{price:.2f}"])
    return out.getvalue().encode()


def test_it_shows_the_evaluation_and_the_leaderboard_in_a_browser(embedded_stack, chromium, shots):
    base = embedded_stack.base_url
    email = "owner@evaluation.example"
    api = signup(base, email)
    version = upload(api, base, "Confusable shapes", confusable_zip(40), "shapes.zip", "image")
    strong = train(api, base, version, "Shape sorter", "leptonnet", epochs=8, batch_size=16)
    quick = train(api, base, version, "Quick try", "leptonnet", epochs=1, batch_size=16)

    context, page = logged_in(chromium, base, email)

    finished(api, base, strong, embedded_stack)
    page.goto(f"{base}/models/runs/{strong}/")
    page.wait_for_selector("[data-testid=evaluation]")
    evaluation = api.get(f"{base}/api/v1/runs/{strong}/evaluation/", timeout=30).json()
    evaluation = evaluation["evaluation"]
    labels, confusion = evaluation["labels"], evaluation["confusion"]
    cells = page.locator("[data-testid=heat-cell]")
    assert cells.count() == len(labels) ** 2
    for k in range(cells.count()):
        cell = cells.nth(k)
        i = labels.index(cell.get_attribute("data-true"))
        j = labels.index(cell.get_attribute("data-predicted"))
        assert int(cell.inner_text()) == confusion[i][j]
    # A mistake cell is coloured from the red scale, a right one from the green.
    colours = page.evaluate(
        """() => [...document.querySelectorAll("[data-testid=heat-cell]")]
             .filter((c) => Number(c.dataset.count) > 0)
             .map((c) => [c.dataset.true === c.dataset.predicted,
                          getComputedStyle(c).backgroundColor])"""
    )
    for correct, colour in colours:
        red, green, _blue = (int(v) for v in colour[colour.index("(") + 1 : -1].split(",")[:3])
        assert (green > red) if correct else (red > green), (correct, colour)
    assert page.locator("[data-testid=weighted-f1]").get_attribute("data-value")

    # The gallery of mistakes: thumbnails that load, true and predicted labels, confidence.
    mistakes = page.locator("[data-testid=mistake]")
    assert mistakes.count() == len(evaluation["mistakes"]) > 0
    page.locator("[data-testid=mistakes]").scroll_into_view_if_needed()
    wait_for_js(page, THUMBNAILS_LOADED)
    first = mistakes.first
    assert first.get_attribute("data-item") == evaluation["mistakes"][0]["item"]
    assert evaluation["mistakes"][0]["true"] in first.inner_text()
    assert evaluation["mistakes"][0]["predicted"] in first.inner_text()
    shots(page, "eval-01-run-page")
    shots(page, "eval-02-evaluation", "[data-testid=evaluation]")

    # The leaderboard lists both runs of the dataset, the better one first and highlighted.
    finished(api, base, quick, embedded_stack)
    page.click("[data-testid=leaderboard-link]")
    page.wait_for_url("**/leaderboard/")
    rows = page.locator("[data-testid=leaderboard-row]")
    assert rows.count() == 2
    board = api.get(f"{base}/api/v1/datasets/{version['dataset']}/leaderboard/", timeout=30).json()
    assert [rows.nth(k).get_attribute("data-run") for k in range(2)] == [
        e["run"] for e in board["entries"]
    ]
    assert {e["run"] for e in board["entries"]} == {strong, quick}
    assert "best" in (rows.first.get_attribute("class") or "")
    assert "Shape sorter" in page.locator("[data-testid=leaderboard]").inner_text()
    assert "Quick try" in page.locator("[data-testid=leaderboard]").inner_text()
    shots(page, "eval-03-leaderboard")
    page.locator("[data-testid=leaderboard-run]").first.click()
    page.wait_for_url("**/models/runs/**")
    page.wait_for_selector("[data-testid=evaluation]")

    # A regression model on market data: its numbers and the predicted-against-actual chart.
    table = upload(api, base, "Shop prices", market_csv(), "prices.csv", "tabular")
    confirmed = api.post(
        f"{base}/api/v1/dataset-versions/{table['id']}/confirm/", json={"target": "price"}
    )
    assert confirmed.status_code == 200, confirmed.text
    regression = train(api, base, table, "Price model", "linear", epochs=60)
    finished(api, base, regression, embedded_stack)
    page.goto(f"{base}/models/runs/{regression}/")
    page.wait_for_selector("[data-testid=evaluation][data-task=tabular-regression]")
    stored = api.get(f"{base}/api/v1/runs/{regression}/evaluation/", timeout=30).json()
    pairs = stored["evaluation"]["pairs"]
    assert page.locator("[data-testid=scatter] circle.dot").count() == len(pairs) > 0
    assert page.locator("[data-testid=diagonal]").count() == 1
    r2 = float(page.locator("[data-testid=eval-r2]").get_attribute("data-value"))
    assert r2 == pytest.approx(stored["evaluation"]["r2"])
    shots(page, "eval-04-regression", "[data-testid=evaluation]")
    page.goto(f"{base}/models/datasets/{table['dataset']}/leaderboard/")
    assert page.locator("[data-testid=leaderboard]").get_attribute("data-metric") == "r2"
    assert page.locator("[data-testid=leaderboard-row]").count() == 1
    shots(page, "eval-05-leaderboard-regression")
    context.close()
