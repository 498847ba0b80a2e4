"""Downloading a version: a streamed zip of the stored images with a spreadsheet-safe manifest,
or a tabular version's CSV; another organization's key gets 404."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.http import StreamingHttpResponse

from apps.core.jobs import JobStatus
from apps.core.scoping import tenant_scope
from apps.datasets.exports import archive_name
from apps.datasets.models import Dataset, DatasetItem, DatasetKind, DatasetVersion

FORMULA = "=cmd|' /C calc'!A0"


def download(client, version, **headers):
    return client.get(f"/api/v1/dataset-versions/{version.pk}/download/", **headers)


def unzip(response) -> zipfile.ZipFile:
    assert isinstance(response, StreamingHttpResponse)
    chunks = [c for c in response.streaming_content if c]
    # Streamed: a piece per image at least, none holding the whole archive.
    assert len(chunks) > 2 and max(map(len, chunks)) < 128 * 1024
    return zipfile.ZipFile(io.BytesIO(b"".join(chunks)))


def manifest(archive: zipfile.ZipFile) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8"))))


def test_it_streams_the_images_under_their_labels_with_a_manifest(client, tenant, ready_version):
    response = download(client, ready_version, **tenant.auth)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="shapes-v1.zip"'
    archive = unzip(response)
    assert archive.testzip() is None
    rows = manifest(archive)
    assert list(rows[0]) == ["file", "label", "split", "sha256", "original_name"]
    assert len(rows) == 36
    images = sorted(n for n in archive.namelist() if n != "manifest.csv")
    assert images == sorted(r["file"] for r in rows)
    for row in rows:
        assert row["file"] == f"{row['label']}/{row['original_name'].split('/')[-1]}"
        assert hashlib.sha256(archive.read(row["file"])).hexdigest() == row["sha256"]
        assert row["split"] in ("train", "validation", "test")


def test_the_manifest_neutralises_formulas(client, tenant, ready_version):
    with tenant_scope(tenant.organization):
        first, second = DatasetItem.objects.filter(version=ready_version)[:2]
    DatasetItem.all_tenants.filter(pk=first.pk).update(label=FORMULA)
    DatasetItem.all_tenants.filter(pk=second.pk).update(original_name="@SUM(A1:A9).png")
    archive = unzip(download(client, ready_version, **tenant.auth))
    text = archive.read("manifest.csv").decode()
    by_sha = {row["sha256"]: row for row in manifest(archive)}
    assert by_sha[first.sha256]["label"] == "'" + FORMULA
    assert by_sha[second.sha256]["original_name"] == "'@SUM(A1:A9).png"
    assert "\n=" not in text and ",=" not in text and ",@" not in text
    # The folder keeps the label, minus what a file system would take as a separator; its
    # manifest cell is neutralised like the label's.
    member = by_sha[first.sha256]["file"]
    assert member.startswith("'=cmd_' _C calc'!A0/")
    assert archive.read(member[1:])[:8] == b"\x89PNG\r\n\x1a\n"


def test_archive_names_are_unique_and_stay_inside_their_folder():
    taken: set[str] = set()
    assert archive_name("cat", "x/a.jpg", taken) == "cat/a.png"
    assert archive_name("cat", "y/a.png", taken) == "cat/a-2.png"
    assert archive_name("cat", "A.gif", taken) == "cat/A-3.png"  # case-insensitive file systems
    assert archive_name("../../etc", "..\\..\\passwd", taken) == "_.._etc/passwd.png"
    assert archive_name("", ".hidden", taken) == "_/hidden.png"
    assert archive_name("猫", "写真.jpg", taken) == "猫/写真.png"


def test_the_page_button_downloads_with_the_session(client, tenant, ready_version):
    client.force_login(tenant.user)
    response = client.get(f"/datasets/versions/{ready_version.pk}/download/")
    assert response.status_code == 200
    assert len(manifest(unzip(response))) == 36


def test_another_organizations_key_gets_404(client, ready_version, outsider):
    assert download(client, ready_version, **outsider.auth).status_code == 404


def test_a_version_that_is_not_ready_cannot_be_downloaded(client, tenant, ready_version):
    DatasetVersion.all_tenants.filter(pk=ready_version.pk).update(status=JobStatus.RUNNING)
    response = download(client, ready_version, **tenant.auth)
    assert response.status_code == 409
    assert "not ready" in response.json()["error"]["message"]


def test_the_download_ignores_the_accept_header(client, tenant, ready_version):
    response = download(client, ready_version, HTTP_ACCEPT="application/zip", **tenant.auth)
    assert response.status_code == 200


@pytest.fixture
def tabular_version(tenant):
    with tenant_scope(tenant.organization):
        dataset = Dataset.objects.create(name="Märkte", kind=DatasetKind.TABULAR)
        version = DatasetVersion.objects.create(
            dataset=dataset, number=1, status=JobStatus.SUCCEEDED, row_count=3
        )
    data = 'market,note,growth\nDE,=HYPERLINK("http://x"),-3.5\nFR,+33 1,+2\nJP,@home,1e3\n'
    version.data_file.save("markets.csv", ContentFile(data.encode()), save=True)
    return version


def test_a_tabular_version_downloads_as_its_csv_made_safe(client, tenant, tabular_version):
    response = download(client, tabular_version, **tenant.auth)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        "Ma%CC%88rkte-v1.csv" in response["Content-Disposition"]
        or "rkte-v1.csv" in (response["Content-Disposition"])
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["market", "note", "growth"],
        ["DE", '\'=HYPERLINK("http://x")', "-3.5"],
        ["FR", "'+33 1", "+2"],
        ["JP", "'@home", "1e3"],
    ]
