"""The API of versions: health report, items with their files, versions of a dataset and new
versions made from one."""

from __future__ import annotations

import io
import json

import pytest
from django.test.client import MULTIPART_CONTENT
from PIL import Image

from apps.core.scoping import tenant_scope
from apps.datasets.models import DatasetItem, DatasetVersion
from tests.apps.datasets.test_pages import SHAPES, set_health, stored_health
from tests.conftest import as_file, png_bytes


def health_of(api, version):
    return api.get(f"/api/v1/dataset-versions/{version.pk}/health/")


def test_an_old_single_class_version_is_not_trainable(api, tenant):
    from tests.apps.datasets.test_pages import ingested

    version = set_health(ingested(tenant, per_class=4, classes=("circle",)), health={})
    body = health_of(api, version).json()
    assert body["trainable"] is False
    assert body["problems"][0]["code"] == "single_class"
    assert "at least one more class" in body["problems"][0]["fix"]


def test_the_health_report_has_every_key_for_an_old_version(api, ready_version, outsider):
    set_health(ready_version, health={})
    response = health_of(api, ready_version)
    assert response.status_code == 200
    body = response.json()
    assert sorted(body["classes"]) == list(SHAPES)
    assert body["classes"]["circle"]["total"] == 12
    assert body["imbalance_ratio"] == 1.0
    assert body["trainable"] is True and body["problems"] == []
    assert body["sizes"]["histogram"] == [{"bucket": "≤64", "count": 36}]
    assert body["duplicates"] == [] and body["leakage"] == [] and body["skipped"] == 0


def test_the_health_report_is_the_stored_one(api, ready_version):
    problem = {"code": "single_class", "severity": "blocking", "message": "Only one class."}
    set_health(ready_version, health=stored_health(problems=[problem], trainable=False))
    body = health_of(api, ready_version).json()
    assert body["trainable"] is False
    assert body["problems"][0]["message"] == "Only one class."
    assert "fix" not in body["problems"][0]  # a stored message says how to fix it
    assert body["leakage"][0]["splits"] == ["train", "test"]
    assert body["formats"] == {"PNG": 30, "JPEG": 6}


def test_another_organization_gets_404_for_the_health_report(client, ready_version, outsider):
    url = f"/api/v1/dataset-versions/{ready_version.pk}/health/"
    assert client.get(url, **outsider.auth).status_code == 404


def test_items_link_to_their_thumbnail_and_image(api, ready_version, outsider):
    body = api.get(f"/api/v1/dataset-versions/{ready_version.pk}/items/?label=circle").json()
    item = body["results"][0]
    assert (
        item["thumbnail_url"] == f"http://testserver/api/v1/dataset-items/{item['id']}/thumbnail/"
    )
    assert item["image_url"] == f"http://testserver/api/v1/dataset-items/{item['id']}/image/"
    thumbnail = api.get(item["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail["Content-Type"] in ("image/jpeg", "image/png", "image/webp")
    assert thumbnail["X-Content-Type-Options"] == "nosniff"
    content = b"".join(thumbnail.streaming_content) if thumbnail.streaming else thumbnail.content
    assert Image.open(io.BytesIO(content)).size == (32, 32)  # never enlarged
    image = api.get(item["image_url"], HTTP_ACCEPT="image/*")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


def test_the_items_endpoint_filters_and_hides_other_organizations(
    client, api, ready_version, outsider
):
    url = f"/api/v1/dataset-items/?version={ready_version.pk}&split=test&label=square"
    body = api.get(url).json()
    assert body["count"] == 2 and {i["label"] for i in body["results"]} == {"square"}
    assert client.get(url, **outsider.auth).json()["count"] == 0
    item_id = body["results"][0]["id"]
    for path in ("", "thumbnail/", "image/"):
        url = f"/api/v1/dataset-items/{item_id}/{path}"
        assert client.get(url, **outsider.auth).status_code == 404
    assert api.get("/api/v1/dataset-items/?version=nope").status_code == 400


def test_it_lists_the_versions_of_a_dataset_with_parent_and_changes(api, tenant, ready_version):
    with tenant_scope(tenant.organization):
        child = DatasetVersion.objects.create(
            dataset=ready_version.dataset,
            number=2,
            parent=ready_version,
            source_kind="derived",
            changes={"added": 1, "removed": 2, "relabelled": 0},
        )
    body = api.get(f"/api/v1/datasets/{ready_version.dataset_id}/versions/").json()
    assert [v["number"] for v in body] == [2, 1]
    assert body[0]["id"] == str(child.pk) and body[0]["parent"] == str(ready_version.pk)
    assert body[0]["changes"] == {"added": 1, "removed": 2, "relabelled": 0}
    assert body[1]["parent"] is None


def versions_url(version: DatasetVersion) -> str:
    return f"/api/v1/datasets/{version.dataset_id}/versions/"


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        ({}, "Nothing would change"),
        ({"base": "not-a-uuid", "remove": "x"}, "'base' must be the id of a version"),
        ({"remove": ["nope"]}, "'remove' must hold item ids"),
        ({"relabel": "[1, 2]"}, "'relabel' must be a JSON object"),
        ({"labels": "{oops", "images": None}, "'labels' must be a JSON object"),
    ],
)
def test_a_new_version_request_is_checked_first(api, ready_version, data, phrase):
    if "images" in data:
        data["images"] = as_file(png_bytes(), "a.png")
    response = api.post(versions_url(ready_version), data)
    assert response.status_code == 400, response.content
    assert phrase in response.json()["error"]["message"]


def test_a_new_version_cannot_start_from_another_organizations_version(
    client, ready_version, outsider
):
    response = client.post(
        versions_url(ready_version), {"remove": str(ready_version.pk)}, **outsider.auth
    )
    assert response.status_code == 404


def test_it_makes_a_new_version_with_additions_removals_and_relabels(api, tenant, ready_version):
    with tenant_scope(tenant.organization):
        items = list(DatasetItem.objects.filter(version=ready_version).order_by("original_name"))
    response = api.post(
        versions_url(ready_version),
        {
            "base": str(ready_version.pk),
            "images": [
                as_file(png_bytes("circle", 1), "new1.png"),
                as_file(png_bytes("circle", 2), "new2.png"),
            ],
            "label": "circle",
            "remove": [str(items[0].pk)],
            "relabel": json.dumps({str(items[1].pk): "square"}),
        },
        content_type=MULTIPART_CONTENT,
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["parent"] == str(ready_version.pk) and body["number"] == 2
    from apps.datasets.services import dataset_version_ingest

    version = dataset_version_ingest(version_id=body["id"])
    assert version.is_ready, version.message
    assert version.item_count == 36 + 2 - 1
