"""Fixtures for end-to-end tests: the real stack per backend, and Debian's Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.stack import BACKENDS, start_stack

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _backend_available(backend: str) -> bool:
    if backend == "embedded":
        return True
    return bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))


@pytest.fixture(scope="session", params=BACKENDS)
def stack(request, tmp_path_factory):
    """The running portal on one backend. PostgreSQL + Redis runs when DATABASE_URL and
    REDIS_URL are set (CI sets them), and then fails, not skips, if they are unreachable."""
    if not _backend_available(request.param):
        pytest.skip("DATABASE_URL and REDIS_URL are not set")
    running = start_stack(request.param, tmp_path_factory.mktemp(f"stack-{request.param}"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory):
    running = start_stack("embedded", tmp_path_factory.mktemp("stack-browser"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (its own browser download does not work here)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is not installed: `make browser` installs Debian's package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path):
    """take(page, name[, selector]): a screenshot of the full page (or of the element that
    `selector` finds) into $LEPTON_SCREENSHOTS, or the test's temporary folder."""
    folder = Path(os.environ.get("LEPTON_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, selector: str | None = None) -> None:
        path = str(folder / f"{name}.png")
        if selector:
            page.locator(selector).screenshot(path=path)
        else:
            page.screenshot(path=path, full_page=True)

    return take
