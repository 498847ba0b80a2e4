"""The version page's live part (?fragment=live): polled by htmx while the ingestion runs,
values rendered on the server; once it ended, the report comes with it and the polling stops."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.datasets.models import DatasetVersion
from apps.datasets.services import dataset_create
from tests.conftest import zip_upload


@pytest.fixture
def member(client, tenant):
    client.force_login(tenant.user)
    return client


@pytest.fixture
def ingesting(tenant) -> DatasetVersion:
    version = dataset_create(
        organization=tenant.organization, user=tenant.user, name="shapes", upload=zip_upload()
    )
    DatasetVersion.all_tenants.filter(pk=version.pk).update(
        status="running", progress=0.4, message="Decoding images: 40 of 100"
    )
    return version


def live(client, version: DatasetVersion, fragment: str = "") -> str:
    url = reverse("datasets:version", kwargs={"pk": version.pk})
    response = client.get(url + (f"?fragment={fragment}" if fragment else ""))
    assert response.status_code == 200
    return response.content.decode()


def live_tag(html: str) -> str:
    return re.search(r'<section[^>]*data-testid="ingestion"[^>]*>', html).group(0)


def test_the_page_polls_while_ingesting_and_shows_the_values_of_its_loading(member, ingesting):
    html = live(member, ingesting)
    tag = live_tag(html)
    assert f'hx-get="/datasets/versions/{ingesting.pk}/?fragment=live"' in tag
    assert 'hx-trigger="every 1s"' in tag
    assert "Decoding images: 40 of 100" in html
    assert re.search(r'<progress class="bar" max="1" value="0.4"', html)


def test_the_fragment_while_ingesting_is_the_live_part_alone(member, ingesting):
    html = live(member, ingesting, "live")
    assert "<html" not in html
    assert 'hx-trigger="every 1s"' in live_tag(html)
    assert 'id="summary"' not in html


def test_the_fragment_of_a_finished_ingestion_stops_polling_and_brings_the_report(
    member, ready_version
):
    html = live(member, ready_version, "live")
    assert "hx-trigger" not in live_tag(html)
    assert "Ready" in html
    assert '<div id="summary" hx-swap-oob="innerHTML">' in html
    assert 'data-testid="health"' in html
    assert "hx-trigger" not in live_tag(live(member, ready_version))


def test_another_organization_gets_404_for_the_fragment(client, outsider, ingesting):
    client.force_login(outsider.user)
    url = reverse("datasets:version", kwargs={"pk": ingesting.pk}) + "?fragment=live"
    assert client.get(url).status_code == 404
