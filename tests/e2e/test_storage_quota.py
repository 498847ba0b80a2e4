"""The pixel bomb end to end: a zip of a few kilobytes whose images decode to a gigabyte, sent
through the REST API to an organization with a small storage quota. The real worker (a Celery
prefork process, decoding in its own pool of processes) stops the ingestion at the first image
that does not fit; the version fails with the quota's message, and nothing of it is left on
disk or counted. The organization beside it uploads as usual."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.test_journey_api import signup, wait_for
from tests.support.archives import bomb_zip
from tests.support.shapes import make_class_zip

pytestmark = pytest.mark.e2e

MB = 1024**2


def disk_bytes(folder: Path) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _folders, files in os.walk(folder)
        for name in files
    )


def test_the_pixel_bomb_is_stopped_by_the_quota_on_a_real_worker_keeping_nothing(stack):
    base = stack.base_url + "/api/v1"
    api = signup(stack.base_url, f"owner-{stack.backend}@bomb.example", "Bomb Quota Corp")
    outsider = signup(stack.base_url, f"owner-{stack.backend}@calm.example", "Calm Quota Corp")
    organization = api.get(f"{base}/organization/", timeout=30).json()
    stack.manage(
        "shell",
        "-c",
        "from apps.quotas.services import quota_override_set; "
        "from apps.tenants.models import Organization; "
        f"quota_override_set(organization=Organization.objects.get(pk='{organization['id']}'), "
        f"storage_bytes={150 * MB})",
    )
    # Twelve 30-megapixel images (90 MB each decoded) among 66 small ones: under 300 KB.
    data = bomb_zip(width=6000, height=5000, good_per_class=22)
    assert len(data) < 300 * 1024

    created = api.post(
        f"{base}/datasets/", data={"name": "bomb"}, files={"file": ("bomb.zip", data)}, timeout=60
    )
    assert created.status_code == 202, created.text
    version = created.json()["id"]
    wait_for(
        lambda: api.get(f"{base}/dataset-versions/{version}/", timeout=30).json()["status"],
        lambda status: status in ("failed", "succeeded"),
        timeout=240,
    )

    failed = api.get(f"{base}/dataset-versions/{version}/", timeout=30).json()
    assert failed["status"] == "failed"
    assert failed["message"].startswith("Storing the images decoded from 'bomb.zip' would add")
    assert "of its 150 MB storage quota" in failed["message"]
    assert "ask an owner to have the platform's administrators raise" in failed["message"]
    after = api.get(f"{base}/organization/", timeout=30).json()
    assert after["storage_used_bytes"] == 0
    assert disk_bytes(stack.data_dir / "media" / "orgs" / organization["id"]) == 0

    calm = outsider.post(
        f"{base}/datasets/",
        data={"name": "shapes"},
        files={"file": ("shapes.zip", make_class_zip(per_class=4))},
        timeout=60,
    )
    assert calm.status_code == 202, calm.text
    wait_for(
        lambda: outsider.get(f"{base}/dataset-versions/{calm.json()['id']}/", timeout=30).json()[
            "status"
        ],
        lambda status: status == "succeeded",
        timeout=120,
    )


@pytest.mark.browser
def test_the_version_page_shows_the_quota_stop_to_the_person_who_uploaded(
    embedded_stack, chromium, shots
):
    from tests.e2e.test_datasets_browser import PASSWORD, drop

    base = embedded_stack.base_url
    page = chromium.new_page(viewport={"width": 1366, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=organization_name]", "Quota Browser")
    page.fill("input[name=email]", "owner@quota-browser.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    embedded_stack.manage(
        "shell",
        "-c",
        "from apps.quotas.services import quota_override_set; "
        "from apps.tenants.models import Organization; "
        "quota_override_set(organization=Organization.objects.get(name='Quota Browser'), "
        f"storage_bytes={50 * MB})",
    )

    page.goto(f"{base}/datasets/")
    drop(page, bomb_zip(width=6000, height=5000, bombs=3, good_per_class=2), "bomb.zip")
    page.wait_for_url("**/datasets/versions/**")
    alert = page.locator("[role=alert]")
    alert.wait_for(timeout=120_000)

    text = alert.inner_text()
    assert text.startswith("Storing the images decoded from 'bomb.zip' would add")
    assert "of its 50 MB storage quota" in text and "ask an owner" in text
    shots(page, "quota-stop-1366")
    page.set_viewport_size({"width": 390, "height": 844})
    shots(page, "quota-stop-390")
    page.close()
