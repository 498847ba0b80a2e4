"""Confirming a table's detected columns and reading it back page by page, through the API and
the page form; another organization's key or login sees 404 and changes nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.test import RequestFactory

from apps.audit.models import AuditEvent
from apps.core.scoping import tenant_scope
from apps.datasets.models import DatasetVersion
from apps.datasets.services import dataset_create, dataset_version_ingest
from tests.support.markets import market_csv, market_rows


def tabular_version(tenant, data: bytes | None = None, ingest: bool = True):
    version = dataset_create(
        organization=tenant.organization,
        user=tenant.user,
        name="Markets",
        kind="tabular",
        upload=SimpleUploadedFile("markets.csv", data or market_csv(), content_type="text/csv"),
    )
    return dataset_version_ingest(version_id=version.pk) if ingest else version


@pytest.fixture
def table(tenant):
    return tabular_version(tenant)


def confirm_url(version) -> str:
    return f"/api/v1/dataset-versions/{version.pk}/confirm/"


def columns_of(version) -> dict[str, dict]:
    return {c["name"]: c for c in version.schema["columns"]}


def reload(tenant, version):
    with tenant_scope(tenant.organization):
        return DatasetVersion.objects.get(pk=version.pk)


def test_it_confirms_the_detected_columns_as_they_are(api, tenant, table):
    response = api.post(confirm_url(table), {})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["confirmed_at"] is not None
    assert body["schema"]["target"] == "demand"
    assert body["health"] == {"problems": [], "trainable": True}
    assert reload(tenant, table).confirmed_at is not None
    assert AuditEvent.all_tenants.filter(action="dataset_version.confirm").count() == 1


def test_it_moves_the_target_and_changes_types_and_roles(api, tenant, table):
    response = api.post(
        confirm_url(table),
        {
            "target": "gdp_per_capita",
            "columns": {
                "coastal": {"type": "categorical"},
                "internet_share": {"role": "ignore"},
                "population_m": {"type": "categorical"},
            },
        },
    )
    assert response.status_code == 200, response.content
    version = reload(tenant, table)
    columns = columns_of(version)
    assert version.schema["target"] == "gdp_per_capita"
    assert columns["gdp_per_capita"]["role"] == "target"
    assert columns["demand"]["role"] == "feature"  # the old target becomes a feature
    assert columns["internet_share"]["role"] == "ignore"
    assert columns["coastal"]["type"] == "categorical"
    assert {t["value"] for t in columns["coastal"]["stats"]["top"]} == {"yes", "no"}
    assert columns["population_m"]["type"] == "categorical"
    assert "top" in columns["population_m"]["stats"]
    assert version.health["trainable"] is True


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"target": "sales"}, 400, "Unknown column 'sales'"),
        ({"columns": {"Region": {"role": "ignore"}}}, 400, "Unknown column 'Region'"),
        ({"target": "region"}, 400, "The target 'region' is categorical; the target must be"),
        ({"columns": {"region": {"type": "numeric"}}}, 400, "Numeric column 'region' has 24"),
        ({"columns": {"region": {"type": "boolean"}}}, 400, "'region' cannot be yes/no"),
        ({"columns": {"region": {"type": "colour"}}}, 400, "is not a valid choice"),
        ({"columns": {"market": {"role": "feature"}}}, 400, "'market' is text-id"),
        (
            {"columns": {"demand": {"role": "ignore"}}},
            400,
            "is the target; it cannot have the role ignore",
        ),
        (
            {"target": "demand", "columns": {"region": {"role": "target"}}},
            400,
            "Choose one target",
        ),
    ],
)
def test_it_refuses_a_confirmation_that_does_not_fit_the_cells(
    api, tenant, table, body, status, expected
):
    before = reload(tenant, table).schema
    response = api.post(confirm_url(table), body)
    assert response.status_code == status, response.content
    assert expected in response.json()["error"]["message"]
    version = reload(tenant, table)
    assert version.schema == before
    assert version.confirmed_at is None


def test_it_names_the_rows_when_a_column_declared_numeric_holds_words(api, tenant):
    rows = market_rows()
    for i in range(0, 24, 3):
        rows[i][4] = "unknown"
    version = tabular_version(tenant, market_csv(rows=rows))
    response = api.post(confirm_url(version), {"columns": {"internet_share": {"type": "numeric"}}})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "'internet_share' has 8 cells that are not numbers" in message
    assert "rows 2 ('unknown'), 5 ('unknown')" in message


def test_it_confirms_only_ready_tables(api, tenant, ready_version):
    images = api.post(confirm_url(ready_version), {})
    assert images.status_code == 400
    assert "holds images" in images.json()["error"]["message"]
    queued = tabular_version(tenant, ingest=False)
    response = api.post(confirm_url(queued), {})
    assert response.status_code == 409
    assert "not ready" in response.json()["error"]["message"]
    assert api.get(f"/api/v1/dataset-versions/{queued.pk}/table/").status_code == 409


def test_it_pages_through_the_canonical_table(api, tenant):
    version = tabular_version(tenant, market_csv())
    url = f"/api/v1/dataset-versions/{version.pk}/table/"
    first = api.get(url).json()
    assert (first["count"], first["page"], first["pages"], first["page_size"]) == (24, 1, 1, 50)
    assert first["columns"][-1] == "__split"
    assert [row[0] for row in first["rows"]] == [row[0] for row in market_rows()]
    assert first["schema"]["target"] == "demand"
    assert api.get(url + "?page=2").status_code == 400
    bad = api.get(url + "?page=two")
    assert bad.status_code == 400
    assert "page must be a whole number" in bad.json()["error"]["message"]


def test_it_answers_404_to_another_organization(client, api, tenant, outsider, table):
    before = reload(tenant, table).schema
    for method, url in (
        ("post", confirm_url(table)),
        ("get", f"/api/v1/dataset-versions/{table.pk}/table/"),
    ):
        kwargs = {"content_type": "application/json"} if method == "post" else {}
        response = getattr(client, method)(url, **kwargs, **outsider.auth)
        assert response.status_code == 404, (url, response.status_code)
    client.force_login(outsider.user)
    page = client.post(f"/datasets/versions/{table.pk}/confirm/", {"target": "population_m"})
    assert page.status_code == 404
    version = reload(tenant, table)
    assert version.schema == before and version.confirmed_at is None


def test_it_confirms_from_the_page_form(client, tenant, table):
    client.force_login(tenant.user)
    indexes = {c["name"]: c["index"] for c in table.schema["columns"]}
    response = client.post(
        f"/datasets/versions/{table.pk}/confirm/",
        {
            "target": "gdp_per_capita",
            f"type-{indexes['coastal']}": "categorical",
            f"role-{indexes['region']}": "ignore",
            f"role-{indexes['gdp_per_capita']}": "feature",  # the new target's old role select
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"/datasets/versions/{table.pk}/"
    version = reload(tenant, table)
    columns = columns_of(version)
    assert version.confirmed_at is not None
    assert version.schema["target"] == "gdp_per_capita"
    assert (columns["coastal"]["type"], columns["region"]["role"]) == ("categorical", "ignore")
    refused = client.post(f"/datasets/versions/{table.pk}/confirm/", {"target": "region"})
    assert refused.status_code == 302
    shown = [str(m) for m in refused.wsgi_request._messages]
    assert any("target 'region' is categorical" in m for m in shown)
    assert client.get(f"/datasets/versions/{table.pk}/confirm/").status_code == 405


def test_it_renders_the_columns_and_the_confirmation_form(tenant, table):
    request = RequestFactory().get("/")
    request.user = tenant.user
    with tenant_scope(tenant.organization):
        version = DatasetVersion.objects.select_related("dataset").get(pk=table.pk)
        html = render_to_string(
            "datasets/_tabular_summary.html", {"version": version}, request=request
        )
    assert 'data-testid="tabular-summary"' in html
    assert html.count('data-testid="tabular-column"') == 7
    assert 'data-column="demand" data-type="numeric" data-role="target"' in html
    assert 'data-column="market" data-type="text-id" data-role="id"' in html
    assert f'action="/datasets/versions/{table.pk}/confirm/"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'data-testid="tabular-unconfirmed"' in html
    assert html.count('data-testid="tabular-preview-row"') == 10
    assert "中国" in html and "مصر" in html and "Côte d&#x27;Ivoire" in html
