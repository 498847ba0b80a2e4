"""Datasets in a real browser (Debian's Chromium via Playwright) on the embedded stack:
drag-and-drop upload with a progress bar, the health report, the gallery, deleting a dataset.
Screenshots go to $LEPTON_SCREENSHOTS (or the test's temporary folder)."""

from __future__ import annotations

import base64
import io
import time
import zipfile

import pytest

from tests.e2e.browser import wait_for_js
from tests.support.shapes import make_class_zip

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Corr3ct-horse-battery"
UPLOAD_BYTES_PER_SECOND = 96 * 1024

DROP = """async ([payload, name]) => {
  const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "application/zip" }));
  const zone = document.querySelector("[data-testid=dropzone]");
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = { bubbles: true, cancelable: true, dataTransfer: transfer };
    zone.dispatchEvent(new DragEvent(type, init));
  }
}"""

THUMBNAILS_LOADED = """() => {
  const images = [...document.querySelectorAll("[data-testid=tile] img")];
  return images.length > 0 && images.every((i) => i.complete && i.naturalWidth > 0);
}"""


def throttle_uploads(context, page, bytes_per_second: int) -> None:
    """Slow the browser's uploads down (Chrome DevTools), so the progress bar can be seen."""
    session = context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )
    return session


def drop(page, data: bytes, name: str) -> None:
    page.evaluate(DROP, [base64.b64encode(data).decode(), name])


def percent_shown(page) -> int:
    return int(
        page.locator("[data-testid=upload-progress] [role=progressbar]").get_attribute(
            "aria-valuenow"
        )
    )


def wait_for_partial_progress(page, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = percent_shown(page)
        if 0 < value < 100:
            return value
        time.sleep(0.05)
    raise AssertionError("the progress bar never showed a partial upload")


def tiles(page) -> list[tuple[str, str]]:
    found = page.eval_on_selector_all(
        "[data-testid=tile]", "els => els.map((e) => [e.dataset.label, e.dataset.split])"
    )
    return [tuple(pair) for pair in found]


def remove_two_in_a_new_version(page, shots) -> None:
    first_version = page.url.split("/gallery/")[0]
    page.locator("[data-testid=tile] input[type=checkbox]").nth(0).check()
    page.locator("[data-testid=tile] input[type=checkbox]").nth(1).check()
    page.get_by_role("button", name="Remove in a new version").click()
    page.wait_for_url("**/datasets/versions/**")
    assert page.url.rstrip("/") != first_version
    page.wait_for_selector("[data-testid=class-chart]", timeout=60_000)
    assert "v2" in page.locator("h1").inner_text()
    assert "2 removed" in page.locator("[data-testid=parent]").inner_text()
    versions = page.locator("[data-testid=versions] tbody tr")
    assert versions.count() == 2
    assert "2 removed" in versions.first.inner_text() and "v1" in versions.first.inner_text()
    assert (
        page.locator("[data-testid=class-chart] g.bar[data-label=square]").get_attribute(
            "data-total"
        )
        == "18"
    )
    shots(page, "15-derived-version")


def test_it_uploads_by_drag_and_drop_and_shows_the_health_report_and_gallery(
    embedded_stack, chromium, shots
):
    base = embedded_stack.base_url
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=organization_name]", "Gallery Browser")
    page.fill("input[name=email]", "owner@gallery.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    # 1. Drop a zip on the drop zone: the upload starts with a progress bar; cancel it once.
    page.goto(f"{base}/datasets/")
    archive = make_class_zip(per_class=20, seed=3, extra_entries={"square/readme.txt": b"hi"})
    session = throttle_uploads(context, page, UPLOAD_BYTES_PER_SECOND)
    drop(page, archive, "shapes.zip")
    wait_for_partial_progress(page)
    page.click("[data-testid=upload-cancel]")
    page.wait_for_selector("text=Upload cancelled.")
    assert page.locator("[data-testid=upload-progress]").is_hidden()
    assert page.input_value("input[name=name]") == "shapes"  # named after the file

    drop(page, archive, "shapes.zip")
    seen = wait_for_partial_progress(page)
    assert page.locator("[data-testid=upload-progress]").is_visible()
    assert page.locator("[data-testid=upload-percent]").inner_text().endswith("%")
    shots(page, "10-upload-progress")
    page.wait_for_url("**/datasets/versions/**")
    session.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    assert 0 < seen < 100

    # 2. The health report: a bar per class, the skipped file, training allowed.
    page.wait_for_selector("[data-testid=class-chart]", timeout=60_000)
    assert page.locator("h1").inner_text().startswith("shapes")
    bars = page.locator("[data-testid=class-chart] g.bar")
    assert bars.count() == 3
    assert sorted(bars.evaluate_all("els => els.map((e) => e.dataset.label)")) == [
        "circle",
        "square",
        "triangle",
    ]
    assert "readme.txt" in page.locator("[data-testid=skipped]").inner_text()
    assert page.locator("[data-testid=train-link]").evaluate("e => e.tagName") == "A"
    assert page.locator("[data-testid=blocking-problems]").count() == 0
    shots(page, "11-health-report")
    download = page.request.get(base + page.locator("[data-testid=download]").get_attribute("href"))
    assert download.status == 200 and download.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(download.body())).namelist()
    assert len(names) == 60 + 1 and "manifest.csv" in names

    # 3. The gallery: thumbnails load, filters change the tiles, pages turn.
    page.click("[data-testid=gallery-link]")
    wait_for_js(page, THUMBNAILS_LOADED)
    assert len(tiles(page)) == 48
    assert "Page 1 of 2" in page.locator("[data-testid=pager]").inner_text()
    shots(page, "12-gallery")
    page.click("[data-testid=next-page]")
    wait_for_js(page, THUMBNAILS_LOADED)
    assert len(tiles(page)) == 12
    assert "Page 2 of 2" in page.locator("[data-testid=pager]").inner_text()

    page.select_option("[data-testid=filter-label]", "square")
    page.click("[data-testid=gallery-filter] button[type=submit]")
    page.wait_for_url("**label=square**")
    wait_for_js(page, THUMBNAILS_LOADED)
    assert {label for label, _ in tiles(page)} == {"square"} and len(tiles(page)) == 20
    page.select_option("[data-testid=filter-split]", "test")
    page.click("[data-testid=gallery-filter] button[type=submit]")
    page.wait_for_url("**split=test**")
    wait_for_js(page, THUMBNAILS_LOADED)
    assert set(tiles(page)) == {("square", "test")} and 0 < len(tiles(page)) < 20
    assert page.locator("[data-testid=pager]").count() == 0
    shots(page, "13-gallery-filtered")

    # 4. A new version without two ticked images; the first version stays as it was.
    remove_two_in_a_new_version(page, shots)

    # 5. A single class blocks training, with the reason, before any GPU time is spent.
    page.goto(f"{base}/datasets/")
    page.fill("input[name=name]", "Only circles")
    page.set_input_files(
        "input[name=file]",
        files=[
            {
                "name": "circles.zip",
                "mimeType": "application/zip",
                "buffer": make_class_zip(per_class=6, seed=4, classes=("circle",)),
            }
        ],
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/datasets/versions/**")
    page.wait_for_selector("[data-testid=blocking-problems]", timeout=60_000)
    assert "circle" in page.locator("[data-testid=blocking-problems]").inner_text()
    train = page.locator("[data-testid=train-link]")
    assert train.is_disabled()
    assert page.locator("[data-testid=train-blocked]").is_visible()
    assert page.locator("[data-testid=class-chart] g.bar").count() == 1
    shots(page, "14-blocking-problem")

    # 6. Delete that dataset: only once its name is typed; the list no longer shows it.
    version_url = page.url
    delete = page.locator("[data-testid=delete-dataset]")
    delete.scroll_into_view_if_needed()
    delete.locator("[data-testid=delete-confirm]").fill("Only circle")
    delete.get_by_role("button", name="Delete dataset").click()
    page.wait_for_selector(".msg.error")
    assert "Type the name, Only circles" in page.locator(".msg.error").inner_text()
    assert page.url == version_url
    delete.locator("[data-testid=delete-confirm]").fill("Only circles")
    shots(page, "16-delete-dataset", "[data-testid=delete-dataset]")
    delete.get_by_role("button", name="Delete dataset").click()
    page.wait_for_url(f"{base}/datasets/")
    assert "Deleted 'Only circles' (1 version)" in page.locator(".msg.success").inner_text()
    listed = page.locator("table.table tbody").inner_text()
    assert "Only circles" not in listed and "shapes" in listed
    shots(page, "17-dataset-deleted")
    context.close()
