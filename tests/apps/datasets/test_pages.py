"""Dataset pages: the health report, the gallery and its thumbnails, upload, versions."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import MULTIPART_CONTENT
from django.urls import reverse
from PIL import Image

from apps.core.jobs import JobStatus
from apps.core.scoping import tenant_scope
from apps.datasets.canonical import THUMBNAIL_SIDE
from apps.datasets.models import Dataset, DatasetItem, DatasetKind, DatasetVersion
from apps.datasets.selectors import GALLERY_PAGE_SIZE, class_chart, size_histogram
from apps.datasets.services import dataset_create, dataset_version_ingest
from apps.datasets.stored import item_read
from tests.conftest import zip_upload

SHAPES = ("circle", "square", "triangle")


def stored_health(**overrides) -> dict:
    """A health report in the shape apps.datasets.health stores on a version."""
    counts = {"train": 8, "validation": 2, "test": 2, "total": 12}
    return {
        "classes": {label: dict(counts) for label in SHAPES},
        "imbalance_ratio": 1.0,
        "min_per_class": 20,
        "small_classes": ["triangle"],
        "duplicates": [{"sha256": "ab" * 32, "paths": ["circle/a.png", "circle/copy of a.png"]}],
        "leakage": [
            {
                "sha256": "cd" * 32,
                "paths": ["square/x.png", "y/square.png"],
                "splits": ["train", "test"],
            }
        ],
        "sizes": {
            "width": {"min": 32, "median": 32, "max": 640},
            "height": {"min": 24, "median": 32, "max": 480},
            "histogram": [{"bucket": "≤64", "count": 30}, {"bucket": "≤1024", "count": 6}],
        },
        "formats": {"PNG": 30, "JPEG": 6},
        "skipped": 1,
        "problems": [
            {"code": "small_classes", "severity": "warning", "message": "triangle has 12 images."}
        ],
        "trainable": True,
    } | overrides


def set_health(version: DatasetVersion, **fields) -> DatasetVersion:
    DatasetVersion.all_tenants.filter(pk=version.pk).update(**fields)
    version.refresh_from_db()
    return version


def ingested(tenant, **shape_kwargs) -> DatasetVersion:
    version = dataset_create(
        organization=tenant.organization,
        user=tenant.user,
        name="shapes",
        upload=zip_upload(**shape_kwargs),
    )
    return dataset_version_ingest(version_id=version.pk)


@pytest.fixture
def member(client, tenant):
    client.force_login(tenant.user)
    return client


def page(client, name: str, pk, query: str = ""):
    return client.get(reverse(name, kwargs={"pk": pk}) + query)


def bars(html: str) -> list[str]:
    return re.findall(r'<g class="bar[^"]*" data-label="([^"]+)"', html)


# --- the health report ----------------------------------------------------------------------


def test_it_shows_a_bar_per_class_and_the_counts(member, ready_version, outsider):
    response = page(member, "datasets:version", ready_version.pk)
    html = response.content.decode()
    assert response.status_code == 200
    assert bars(html) == list(SHAPES)
    assert 'data-testid="class-chart"' in html
    assert html.count('<rect class="seg train"') == 3
    assert re.search(r'<a class="button primary" href="/models/new/\?dataset_version=', html)
    assert 'data-testid="blocking-problems"' not in html
    assert 'data-testid="size-histogram"' in html  # sizes from the items when not reported


def test_it_shows_every_part_of_a_stored_report(member, ready_version, outsider):
    set_health(
        ready_version,
        health=stored_health(),
        skipped=[{"path": "notes.txt", "reason": "not an image file"}],
    )
    html = page(member, "datasets:version", ready_version.pk).content.decode()
    for expected in (
        "copy of a.png",  # duplicates
        "y/square.png",  # leakage
        "train, test",
        "Under the minimum of 20 images per class: triangle.",
        "triangle has 12 images.",  # a warning
        'data-bucket="≤1024"',  # the size histogram
        "<span>JPEG</span><b>6</b>",  # formats
        "notes.txt",  # skipped, with the reason
        "not an image file",
        "640",
    ):
        assert expected in html, expected
    assert '<g class="bar small" data-label="triangle"' in html


def test_a_blocking_problem_disables_training_and_says_how_to_fix_it(member, ready_version):
    problem = {
        "code": "empty_split",
        "severity": "blocking",
        "message": "The test split is empty. Each class needs at least 3 images.",
    }
    set_health(ready_version, health=stored_health(problems=[problem], trainable=False))
    html = page(member, "datasets:version", ready_version.pk).content.decode()
    blocking = html.split('data-testid="blocking-problems"')[1].split("</section>")[0]
    assert "The test split is empty. Each class needs at least 3 images." in blocking
    assert re.search(
        r'<button type="button" class="primary" disabled[^>]*data-testid="train-link"', html
    )
    assert "/models/new/?dataset_version=" not in html


def test_a_single_class_blocks_training_even_without_a_stored_report(member, tenant):
    version = ingested(tenant, per_class=4, classes=("circle",))
    set_health(version, health={})
    html = page(member, "datasets:version", version.pk).content.decode()
    assert "single class (circle)" in html
    assert "How to fix:</b> Add images of at least one more class" in html
    assert re.search(r"<button[^>]*disabled[^>]*data-testid=\"train-link\"", html)


def test_an_old_version_with_an_empty_report_renders_from_its_counts(member, ready_version):
    set_health(ready_version, health={}, skipped=[])
    response = page(member, "datasets:version", ready_version.pk)
    assert response.status_code == 200
    assert bars(response.content.decode()) == list(SHAPES)


def test_a_long_list_of_skipped_files_is_folded(member, ready_version):
    skipped = [{"path": f"junk/{i}.txt", "reason": "not an image file"} for i in range(12)]
    set_health(ready_version, skipped=skipped)
    html = page(member, "datasets:version", ready_version.pk).content.decode()
    assert "<details><summary>" in html
    assert html.count("not an image file") == 12


def test_the_live_fragment_is_the_report(member, ready_version):
    html = page(member, "datasets:version", ready_version.pk, "?fragment=summary").content.decode()
    assert "<html" not in html
    assert 'data-testid="health"' in html and bars(html) == list(SHAPES)


def test_a_failed_version_shows_its_message_and_no_report(member, tenant):
    version = dataset_create(
        organization=tenant.organization, user=tenant.user, name="bad", upload=zip_upload()
    )
    set_health(version, status=JobStatus.FAILED, message="No readable image was found.")
    html = page(member, "datasets:version", version.pk).content.decode()
    assert "No readable image was found." in html
    assert 'data-testid="health"' not in html


def test_a_tabular_version_page_renders_without_an_image_report(member, tenant):
    with tenant_scope(tenant.organization):
        dataset = Dataset.objects.create(name="markets", kind=DatasetKind.TABULAR)
        version = DatasetVersion.objects.create(
            dataset=dataset, number=1, status=JobStatus.SUCCEEDED, row_count=5
        )
    html = page(member, "datasets:version", version.pk).content.decode()
    assert "Download CSV" in html
    assert 'data-testid="class-chart"' not in html and 'data-testid="gallery-link"' not in html


def test_it_lists_the_versions_with_their_parent_and_changes(member, tenant, ready_version):
    with tenant_scope(tenant.organization):
        child = DatasetVersion.objects.create(
            dataset=ready_version.dataset,
            number=2,
            parent=ready_version,
            source_kind="derived",
            changes={"added": 2, "removed": 1},
            status=JobStatus.QUEUED,
        )
    html = page(member, "datasets:version", child.pk).content.decode()
    versions = html.split('data-testid="versions"')[1]
    assert "2 added, 1 removed" in versions
    assert f'href="/datasets/versions/{ready_version.pk}/">v1</a>' in versions
    assert "Derived from version 1: 2 added, 1 removed" in html


# --- charts -----------------------------------------------------------------------------------


def test_the_class_chart_stacks_the_splits_in_proportion():
    chart = class_chart(
        {
            "a": {"train": 70, "validation": 15, "test": 15, "total": 100},
            "b": {"train": 7, "validation": 0, "test": 3, "total": 10},
        }
    )
    a, b = chart.bars
    assert [s.split for s in a.segments] == ["train", "validation", "test"]
    assert sum(s.width for s in a.segments) == pytest.approx(440)
    assert [s.split for s in b.segments] == ["train", "test"]  # no empty segment
    assert sum(s.width for s in b.segments) == pytest.approx(44)
    assert b.segments[1].x == pytest.approx(b.segments[0].x + b.segments[0].width)
    assert class_chart({}) is None


def test_the_size_histogram_scales_to_the_tallest_bucket():
    histogram = size_histogram(
        {"histogram": [{"bucket": "≤64", "count": 5}, {"bucket": "≤128", "count": 10}]}
    )
    low, high = histogram.columns
    assert high.height == 2 * low.height
    assert size_histogram({}) is None


# --- the gallery ------------------------------------------------------------------------------


def test_the_gallery_pages_and_filters_and_keeps_the_filter_across_pages(member, tenant):
    version = ingested(tenant, per_class=17)  # 51 images: two pages of 48
    html = page(member, "datasets:gallery", version.pk).content.decode()
    assert html.count('data-testid="tile"') == GALLERY_PAGE_SIZE
    assert "Page 1 of 2" in html
    second = page(member, "datasets:gallery", version.pk, "?page=2").content.decode()
    assert second.count('data-testid="tile"') == 51 - GALLERY_PAGE_SIZE

    html = page(member, "datasets:gallery", version.pk, "?label=square").content.decode()
    labels = set(re.findall(r'data-testid="tile" data-label="([^"]+)"', html))
    assert labels == {"square"} and "17 images" in html
    html = page(member, "datasets:gallery", version.pk, "?label=square&split=test").content.decode()
    splits = set(re.findall(r'data-testid="tile" data-label="square" data-split="([^"]+)"', html))
    assert splits == {"test"}
    assert '<option value="test" selected>' in html


def test_gallery_page_links_keep_the_filter(member, tenant):
    version = ingested(tenant, per_class=50, classes=("circle", "square"))
    html = page(member, "datasets:gallery", version.pk, "?split=train").content.decode()
    assert "?split=train&amp;page=2" in html
    html = page(member, "datasets:gallery", version.pk, "?split=train&page=2").content.decode()
    assert set(re.findall(r'data-split="([^"]+)"', html)) == {"train"}
    assert "?split=train&amp;page=1" in html


def test_each_tile_shows_its_label_split_name_and_thumbnail(member, ready_version):
    with tenant_scope(ready_version.organization):
        item = DatasetItem.objects.filter(version=ready_version).first()
    html = page(member, "datasets:gallery", ready_version.pk).content.decode()
    assert f'src="/datasets/items/{item.pk}/thumbnail/"' in html
    assert item.original_name in html
    assert f'class="badge split-{item.split}"' in html


def test_unknown_filter_values_show_everything(member, ready_version):
    html = page(member, "datasets:gallery", ready_version.pk, "?label=nope&split=x&page=z")
    assert html.content.decode().count('data-testid="tile"') == 36


# --- thumbnails and images ------------------------------------------------------------------


def first_item(version: DatasetVersion) -> DatasetItem:
    with tenant_scope(version.organization):
        return DatasetItem.objects.filter(version=version).first()


def test_a_thumbnail_is_rendered_for_an_item_without_one(member, ready_version):
    item = first_item(ready_version)
    DatasetItem.all_tenants.filter(pk=item.pk).update(thumbnail="")  # made before thumbnails
    response = page(member, "datasets:item_thumbnail", item.pk)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and max(image.size) <= THUMBNAIL_SIDE
    again = page(member, "datasets:item_thumbnail", item.pk)
    assert again.content == response.content  # from the cache


def test_a_stored_thumbnail_is_served_with_its_type(member, ready_version):
    item = first_item(ready_version)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="WEBP")
    name = default_storage.save("thumbs/t.webp", ContentFile(buffer.getvalue()))
    DatasetItem.all_tenants.filter(pk=item.pk).update(
        thumbnail=name, thumbnail_offset=None, thumbnail_length=None
    )
    response = page(member, "datasets:item_thumbnail", item.pk)
    assert response["Content-Type"] == "image/webp"
    assert b"".join(response.streaming_content) == buffer.getvalue()


def test_a_missing_stored_thumbnail_is_rendered_again(member, ready_version):
    item = first_item(ready_version)
    DatasetItem.all_tenants.filter(pk=item.pk).update(
        thumbnail="thumbs/gone.webp", thumbnail_offset=None, thumbnail_length=None
    )
    response = page(member, "datasets:item_thumbnail", item.pk)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"


def test_a_stored_thumbnail_of_an_odd_type_is_never_served_as_is(member, ready_version):
    item = first_item(ready_version)
    name = default_storage.save("thumbs/t.html", ContentFile(b"<script>alert(1)</script>"))
    DatasetItem.all_tenants.filter(pk=item.pk).update(
        thumbnail=name, thumbnail_offset=None, thumbnail_length=None
    )
    response = page(member, "datasets:item_thumbnail", item.pk)
    assert response["Content-Type"] == "image/jpeg"
    assert b"script" not in response.content


def test_the_image_is_the_stored_png_and_answers_304_when_unchanged(member, ready_version):
    item = first_item(ready_version)
    response = page(member, "datasets:item_image", item.pk)
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == item_read(item)
    assert int(response["Content-Length"]) == item.file_length
    url = reverse("datasets:item_image", kwargs={"pk": item.pk})
    assert member.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


@pytest.mark.parametrize(
    "name", ["version", "gallery", "download", "derive", "item_thumbnail", "item_image"]
)
def test_an_outsider_gets_404_on_every_dataset_page(client, ready_version, outsider, name):
    client.force_login(outsider.user)
    target = first_item(ready_version) if name.startswith("item") else ready_version
    # A method the page does not take answers 405 before any lookup (the same for every id).
    assert page(client, f"datasets:{name}", target.pk).status_code in (404, 405)
    assert client.post(reverse(f"datasets:{name}", kwargs={"pk": target.pk})).status_code in (
        404,
        405,
    )


def test_pages_need_a_login(client, ready_version):
    response = page(client, "datasets:item_thumbnail", first_item(ready_version).pk)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- upload -----------------------------------------------------------------------------------


def test_the_upload_form_offers_both_kinds_and_a_drop_zone(member, tenant):
    html = member.get("/datasets/").content.decode()
    assert '<option value="tabular"' in html and '<option value="image"' in html
    assert 'data-testid="dropzone"' in html and "js/upload.js" in html
    assert ".tar.gz" in html and ".csv" in html


def test_the_page_upload_takes_the_kind(member, tenant):
    response = member.post(
        "/datasets/",
        {"name": "Shapes", "kind": "image", "file": zip_upload()},
        content_type=MULTIPART_CONTENT,
    )
    assert response.status_code == 302
    with tenant_scope(tenant.organization):
        assert Dataset.objects.get().kind == DatasetKind.IMAGE


def test_a_table_uploaded_from_the_page_shows_its_columns_and_downloads_as_csv(member, tenant):
    from tests.support.markets import market_csv

    upload = SimpleUploadedFile("markets.csv", market_csv(), content_type="text/csv")
    response = member.post("/datasets/", {"name": "Markets", "kind": "tabular", "file": upload})
    assert response.status_code == 302
    with tenant_scope(tenant.organization):
        version = DatasetVersion.objects.get()
    version = dataset_version_ingest(version_id=version.pk)
    assert version.is_ready, version.message
    html = member.get(response["Location"]).content.decode()
    assert 'data-testid="tabular-summary"' in html  # the tabular fragment
    assert 'data-testid="class-chart"' not in html
    download = member.get(reverse("datasets:download", kwargs={"pk": version.pk}))
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(download.streaming_content).startswith(b"market,")


def test_the_page_upload_shows_the_services_message(member, tenant):
    response = member.post(
        "/datasets/",
        {"name": "x", "kind": "video", "file": zip_upload()},
        content_type=MULTIPART_CONTENT,
    )
    assert response.status_code == 400
    assert "kind must be one of image, tabular" in response.content.decode()


# --- new versions from the page ---------------------------------------------------------------


def test_the_derive_form_needs_something_to_do(member, ready_version):
    url = reverse("datasets:derive", kwargs={"pk": ready_version.pk})
    response = member.post(url, {"action": "remove"})
    assert response.status_code == 400
    assert "Tick the images" in response.content.decode()


def new_version_of(version: DatasetVersion) -> DatasetVersion:
    return DatasetVersion.all_tenants.get(parent=version)


def test_the_gallery_form_makes_a_version_without_the_ticked_images(member, ready_version):
    with tenant_scope(ready_version.organization):
        ticked = [str(i.pk) for i in DatasetItem.objects.filter(version=ready_version)[:2]]
    url = reverse("datasets:derive", kwargs={"pk": ready_version.pk})
    response = member.post(url, {"action": "remove", "selected": ticked})
    new = new_version_of(ready_version)
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:version", kwargs={"pk": new.pk})
    assert new.changes["removed"] == 2 and new.number == 2


def test_the_gallery_form_relabels_the_ticked_images(member, ready_version):
    with tenant_scope(ready_version.organization):
        item = DatasetItem.objects.filter(version=ready_version, label="circle").first()
    url = reverse("datasets:derive", kwargs={"pk": ready_version.pk})
    response = member.post(
        url, {"action": "relabel", "selected": [str(item.pk)], "new_label": "square"}
    )
    assert response.status_code == 302
    assert new_version_of(ready_version).changes["relabelled"] == 1


def test_the_version_page_adds_images_with_a_label(member, ready_version):
    from tests.conftest import png_bytes

    url = reverse("datasets:derive", kwargs={"pk": ready_version.pk})
    images = [
        SimpleUploadedFile(f"new{i}.png", png_bytes("circle", i), content_type="image/png")
        for i in range(2)
    ]
    response = member.post(url, {"action": "add", "label": "circle", "images": images})
    assert response.status_code == 302
    assert new_version_of(ready_version).changes["added"] == 2


def test_the_version_page_shows_the_services_message(member, ready_version):
    url = reverse("datasets:derive", kwargs={"pk": ready_version.pk})
    image = SimpleUploadedFile("a.png", b"not really", content_type="image/png")
    response = member.post(url, {"action": "add", "images": [image]})
    assert response.status_code == 400
    assert "No label for &#x27;a.png&#x27;" in response.content.decode()
    assert not DatasetVersion.all_tenants.filter(parent=ready_version).exists()
