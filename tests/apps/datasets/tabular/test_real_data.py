"""A real table that ships inside a package, round-tripped: plotly's gapminder data set
(plotly/package_data/datasets/gapminder.csv.gz), 2007 only, so one row per country."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import plotly
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.scoping import tenant_scope
from apps.datasets.services import dataset_version_ingest
from apps.datasets.tabular.services import iter_table

GAPMINDER = Path(plotly.__file__).parent / "package_data" / "datasets" / "gapminder.csv.gz"


def gapminder_2007() -> tuple[list[str], list[list[str]]]:
    with gzip.open(GAPMINDER, "rt", encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, [row for row in rows if row[header.index("year")] == "2007"]


def test_it_round_trips_gapminder_2007_and_confirms_its_target(api, tenant):
    header, rows = gapminder_2007()
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    upload = SimpleUploadedFile("gapminder-2007.csv", buffer.getvalue().encode(), "text/csv")
    response = api.post(
        "/api/v1/datasets/", {"name": "Gapminder", "kind": "tabular", "file": upload}
    )
    assert response.status_code == 202, response.content
    version = dataset_version_ingest(version_id=response.json()["id"])
    assert version.row_count == len(rows) == 142

    detected = {c["name"]: (c["type"], c["role"]) for c in version.schema["columns"]}
    assert detected == {
        "country": ("text-id", "id"),
        "continent": ("categorical", "feature"),
        "year": ("numeric", "ignore"),  # 2007 in every row
        "lifeExp": ("numeric", "feature"),
        "pop": ("numeric", "feature"),
        "gdpPercap": ("numeric", "feature"),
        "iso_alpha": ("text-id", "id"),  # unique but for one slip: both Koreas are KOR
        "iso_num": ("numeric", "id"),
        "centroid_lon": ("numeric", "feature"),
        "centroid_lat": ("numeric", "target"),  # no column says "target": the last numeric one
    }
    continent = next(c for c in version.schema["columns"] if c["name"] == "continent")
    assert continent["stats"]["top"][0] == {"value": "Africa", "count": 52}

    confirmed = api.post(
        f"/api/v1/dataset-versions/{version.pk}/confirm/",
        {"target": "gdpPercap", "columns": {"centroid_lat": {"role": "ignore"}}},
    )
    assert confirmed.status_code == 200, confirmed.content
    schema = confirmed.json()["schema"]
    assert schema["target"] == "gdpPercap"
    assert confirmed.json()["health"]["trainable"] is True

    with tenant_scope(tenant.organization):
        canonical = list(iter_table(version))
    assert canonical[0] == [*header, "__split"]
    assert [row[:-1] for row in canonical[1:]] == rows
    assert {row[-1] for row in canonical[1:]} == {"train", "validation", "test"}
    assert version.schema["split"]["counts"] == {"train": 100, "validation": 21, "test": 21}
