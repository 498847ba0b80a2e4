"""A market-assessment (tabular regression) model behind the prediction API: a model trained
for real on plotly's gapminder table answers JSON rows exactly as the stored model does, bad
rows are refused naming the row and the column, and every call is recorded as usage."""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import plotly
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.analytics.models import UsageEvent
from apps.core.jobs import JobStatus
from apps.core.scoping import tenant_scope
from apps.datasets.services import dataset_version_ingest
from apps.datasets.tabular.services import iter_table
from apps.deployments.models import Endpoint
from apps.deployments.predictors import predictor_for
from apps.training.execution import tabular_records, training_run_execute
from apps.training.models import ModelVersion
from apps.training.services import model_config_create, training_run_start
from tests.apps.deployments.test_predict import ENDPOINTS, deploy, seeded_model_version
from tests.conftest import as_file, png_bytes
from workers.ml.tabular import TabularPredictor

GAPMINDER = Path(plotly.__file__).parent / "package_data" / "datasets" / "gapminder.csv.gz"
FEATURES = {
    "continent": "categorical",
    "pop": "numeric",
    "gdpPercap": "numeric",
    "populous": "boolean",
    "centroid_lon": "numeric",
    "centroid_lat": "numeric",
}
ROW = {
    "continent": "Europe",
    "pop": 8_000_000,
    "gdpPercap": 30_000.5,
    "populous": False,
    "centroid_lon": 10.0,
    "centroid_lat": 50.0,
}


def gapminder_csv() -> bytes:
    """Gapminder 2007 (one row per country) with a yes/no column, "populous" (over 50 million
    people), and a few unknown GDPs, so the model has a boolean input and a missing value."""
    with gzip.open(GAPMINDER, "rt", encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    rows = [row for row in rows if row[header.index("year")] == "2007"]
    pop, gdp = header.index("pop"), header.index("gdpPercap")
    for i, row in enumerate(rows):
        row.append("yes" if float(row[pop]) > 50e6 else "no")
        if i % 25 == 3:
            row[gdp] = ""
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[*header, "populous"], *rows])
    return buffer.getvalue().encode()


def trained_regressor(api, tenant) -> ModelVersion:
    """Upload, confirm and train (an MLP, a few epochs) through the portal's services."""
    upload = SimpleUploadedFile("gapminder-2007.csv", gapminder_csv(), "text/csv")
    created = api.post(
        "/api/v1/datasets/", {"name": "Gapminder", "kind": "tabular", "file": upload}
    )
    assert created.status_code == 202, created.content
    version = dataset_version_ingest(version_id=created.json()["id"])
    confirmed = api.post(
        f"/api/v1/dataset-versions/{version.pk}/confirm/",
        {"target": "lifeExp", "columns": {"centroid_lat": {"role": "feature"}}},
    )
    assert confirmed.status_code == 200, confirmed.content
    version.refresh_from_db()
    features = {c["name"]: c["type"] for c in version.schema["columns"] if c["role"] == "feature"}
    assert features == FEATURES
    config = model_config_create(
        organization=tenant.organization,
        user=tenant.user,
        name="life expectancy",
        template="mlp",
        dataset_version=version,
        hyperparameters={"epochs": 5, "seed": 3},
    )
    run = training_run_execute(run_id=training_run_start(model_config=config, user=tenant.user).pk)
    assert run.status == JobStatus.SUCCEEDED, run.error
    return ModelVersion.all_tenants.get(run=run)


@pytest.fixture
def model_version(api, tenant, outsider) -> ModelVersion:
    return trained_regressor(api, tenant)


@pytest.fixture
def url(api, model_version) -> str:
    return deploy(api, model_version)


def stored_predictor(model_version: ModelVersion) -> TabularPredictor:
    """The model as stored, loaded on its own (not the API's cached copy)."""
    return TabularPredictor.load(Path(default_storage.path(model_version.file.name)), device="cpu")


def table_records(tenant, model_version: ModelVersion) -> list[dict[str, str]]:
    """The rows of the table the model was trained on, as text cells (the canonical CSV)."""
    with tenant_scope(tenant.organization):
        header, *rows = list(iter_table(model_version.model_config.dataset_version))
    return [dict(zip(header, row, strict=True)) for row in rows]


def predict(api, url: str, body: Any):
    return api.post(url, json.dumps(body), content_type="application/json")


def events() -> list[UsageEvent]:
    return list(UsageEvent.all_tenants.filter(kind=UsageEvent.Kind.PREDICT).order_by("created_at"))


# --- deploying and predicting ---------------------------------------------------------------


def test_it_deploys_a_regression_model_version(api, tenant, model_version):
    r = api.post(ENDPOINTS, {"model_version": str(model_version.pk)})
    assert r.status_code == 201, r.content
    assert r.json()["task"] == "tabular-regression"
    assert api.get(f"{ENDPOINTS}{r.json()['id']}/").json()["task"] == "tabular-regression"


def test_it_refuses_to_deploy_a_model_of_a_task_it_cannot_serve(api, tenant, tmp_path):
    version = seeded_model_version(tenant, tmp_path)
    ModelVersion.all_tenants.filter(pk=version.pk).update(task="object-detection")
    r = api.post(ENDPOINTS, {"model_version": str(version.pk)})
    assert r.status_code == 400
    error = r.json()["error"]
    assert "model_version" in error["fields"]
    assert "'object-detection' model, which cannot be deployed" in error["message"]
    assert "tabular-regression" in error["message"]
    assert not Endpoint.all_tenants.exists()


def test_it_predicts_the_table_exactly_as_the_stored_model_does(api, tenant, model_version, url):
    records = table_records(tenant, model_version)
    # The table's own rows, sent as they are (id columns, the target and all), text cells.
    sent = [{k: v for k, v in record.items() if k != "__split"} for record in records]

    r = predict(api, url, {"rows": sent})

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["target"] == "lifeExp"
    assert body["model_version"] == str(model_version.pk)
    assert url == f"{ENDPOINTS}{body['endpoint']}/predict/"
    assert body["latency_ms"] > 0
    # As training read them: yes/no cells as 1.0 / 0.0 (apps.training.services).
    schema = model_version.model_config.dataset_version.schema
    as_trained = list(tabular_records(schema, iter(records)))
    assert {r["populous"] for r in as_trained} == {0.0, 1.0}
    expected = stored_predictor(model_version).predict_rows(as_trained)
    assert [p["value"] for p in body["predictions"]] == expected
    assert len(set(expected)) > 100  # a real model: the rows do get different answers
    assert [e.status_code for e in events()] == [200]


def test_json_numbers_and_booleans_read_as_the_tables_text_does(api, tenant, model_version, url):
    records = table_records(tenant, model_version)[:40]
    as_text = [{name: record[name] for name in FEATURES} for record in records]
    as_json = [
        {
            "continent": row["continent"],
            "pop": int(row["pop"]),
            "gdpPercap": float(row["gdpPercap"]) if row["gdpPercap"] else None,
            "populous": row["populous"] == "yes",
            "centroid_lon": float(row["centroid_lon"]),
            "centroid_lat": float(row["centroid_lat"]),
        }
        for row in as_text
    ]
    by_text = predict(api, url, {"rows": as_text})
    by_json = predict(api, url, {"rows": as_json})
    assert by_text.status_code == by_json.status_code == 200
    assert by_text.json()["predictions"] == by_json.json()["predictions"]


def test_one_row_answers_like_the_stored_model(api, model_version, url):
    r = predict(api, url, {"row": ROW})
    assert r.status_code == 200, r.content
    expected = stored_predictor(model_version).predict(ROW | {"populous": 0.0})
    assert r.json()["predictions"] == [{"value": expected}]
    assert r.json()["target"] == "lifeExp"


@pytest.mark.parametrize("yes", [True, 1, 1.0, "yes", "YES", " y ", "true", "T", "1"])
def test_every_way_of_writing_yes_is_read_like_training(api, model_version, url, yes):
    r = predict(api, url, {"row": ROW | {"populous": yes}})
    assert r.status_code == 200, r.content
    expected = stored_predictor(model_version).predict(ROW | {"populous": 1.0})
    assert r.json()["predictions"] == [{"value": expected}]


@pytest.mark.parametrize("no", [False, 0, "no", "N", "false", "f", "0"])
def test_every_way_of_writing_no_is_read_like_training(api, model_version, url, no):
    r = predict(api, url, {"row": ROW | {"populous": no}})
    assert r.json()["predictions"] == predict(api, url, {"row": ROW}).json()["predictions"]


def test_a_left_out_null_or_na_cell_is_a_missing_value(api, model_version, url):
    without = {k: v for k, v in ROW.items() if k not in ("gdpPercap", "populous", "continent")}
    expected = stored_predictor(model_version).predict(without)
    for missing in [None, "", "NA", " n/a ", "null", "-", "None", "nan", "NaN"]:
        row = without | {"gdpPercap": missing, "populous": missing, "continent": missing}
        r = predict(api, url, {"rows": [without, row]})
        assert r.status_code == 200, (missing, r.content)
        assert r.json()["predictions"] == [{"value": expected}] * 2, missing
    # The GDP is a real input: leaving it out changes the answer.
    assert predict(api, url, {"row": ROW}).json()["predictions"] != [{"value": expected}]


def test_numeric_text_reads_as_the_number(api, url):
    as_numbers = predict(api, url, {"row": ROW}).json()["predictions"]
    as_text = ROW | {"pop": " 8000000 ", "gdpPercap": "3.00005e4", "centroid_lon": "+10"}
    assert predict(api, url, {"row": as_text}).json()["predictions"] == as_numbers


def test_the_tables_other_columns_are_accepted_and_ignored(api, url):
    plain = predict(api, url, {"row": ROW}).json()["predictions"]
    extra = ROW | {"country": "Austria", "lifeExp": 80, "year": 2007, "iso_alpha": "AUT"}
    r = predict(api, url, {"row": extra})
    assert r.status_code == 200, r.content
    assert r.json()["predictions"] == plain


def test_an_unseen_category_still_gets_an_answer(api, model_version, url):
    r = predict(api, url, {"row": ROW | {"continent": "Atlantis"}})
    assert r.status_code == 200
    expected = stored_predictor(model_version).predict(ROW | {"continent": "Atlantis"})
    assert r.json()["predictions"] == [{"value": expected}]


def test_the_row_limit_is_inclusive(api, url, settings):
    settings.LEPTON_MAX_PREDICT_ROWS = 3
    r = predict(api, url, {"rows": [ROW] * 3})
    assert r.status_code == 200
    assert len(r.json()["predictions"]) == 3


# --- refused input ----------------------------------------------------------------------------

BAD_CELLS = [
    # (column, value, phrase in the message)
    ("gdpPercapita", 1, "unknown column 'gdpPercapita' (did you mean 'gdpPercap'?)"),
    ("__split", "train", "unknown column '__split'"),
    ("pop", "lots", "'lots' is not a number"),
    ("pop", "12 million", "is not a number"),
    ("pop", True, "true is not a number"),
    ("pop", [1], "[1] is not a number"),
    ("pop", "1,5", "decimal comma; write the number with a dot (1.5)"),
    ("pop", "Infinity", "not a finite number"),
    ("pop", "inf", "not a finite number"),
    ("gdpPercap", "-Infinity", "not a finite number"),
    ("gdpPercap", 10**400, "not a finite number"),
    ("populous", "maybe", "'maybe' is not yes or no"),
    ("populous", 2, "2 is not yes or no"),
    ("continent", ["Europe"], "is not a category"),
    ("continent", 1.5, 'as text, as it appears in the table (e.g. "1.5")'),
    ("continent", {"name": "Europe"}, "is not a category"),
]


@pytest.mark.parametrize(("column", "value", "phrase"), BAD_CELLS)
def test_a_bad_cell_is_refused_naming_its_row_and_column(api, tenant, url, column, value, phrase):
    r = predict(api, url, {"rows": [ROW, ROW, ROW | {column: value}]})
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["message"].startswith(f"rows[2], column '{column}'") or error[
        "message"
    ].startswith("rows[2] has an unknown column")
    assert phrase in error["message"]
    assert list(error["fields"]) == [f"rows[2].{column}"]
    assert [e.status_code for e in events()] == [400]


def test_an_unknown_column_lists_the_columns_the_model_reads(api, url):
    r = predict(api, url, {"row": ROW | {"price": 3}})
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert message.startswith("row has an unknown column 'price'")
    for name, kind in FEATURES.items():
        assert f"{name} ({kind})" in message
    assert "Correct the name or leave the column out." in message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_json_nan_or_infinity_is_refused_naming_its_row_and_column(api, url, literal):
    body = '{"rows": [' + json.dumps(ROW) + ', {"gdpPercap": ' + literal + "}]}"
    r = api.post(url, body, content_type="application/json")
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["message"].startswith("rows[1], column 'gdpPercap': ")
    assert "not a finite number" in error["message"]
    assert "null when the value is unknown" in error["message"]
    assert list(error["fields"]) == ["rows[1].gdpPercap"]


@pytest.mark.parametrize(
    ("row", "phrase"),
    [
        ([1, 2], "rows[1] is a list, not an object"),
        ("Europe", "rows[1] is a string"),
        (None, "rows[1] is null"),
    ],
)
def test_a_row_that_is_no_object_is_refused(api, url, row, phrase):
    r = predict(api, url, {"rows": [ROW, row]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert phrase in error["message"]
    assert "Send each row as an object" in error["message"]
    assert '"continent": "' in error["message"]  # an example row to copy
    assert list(error["fields"]) == ["rows[1]"]


def test_too_many_rows_are_refused_with_the_limit(api, tenant, url, settings):
    settings.LEPTON_MAX_PREDICT_ROWS = 3
    r = predict(api, url, {"rows": [ROW] * 4})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "too_many_rows"
    assert "at most 3 rows per call; got 4" in error["message"]
    assert "Split them" in error["message"]
    assert [e.status_code for e in events()] == [400]


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ([ROW], 'wrap the rows in an object: {"rows": [...]}'),
        ({}, "neither 'rows' nor 'row'"),
        ({"rows": [ROW], "row": ROW}, "either 'rows' or 'row', not both"),
        ({"rows": [ROW], "top_k": 3}, "Unknown key 'top_k'"),
        ({"rows": []}, "'rows' is empty"),
        ({"rows": ROW}, "'rows' holds one object"),
        ({"rows": "a,b"}, "'rows' is a string"),
        ({"row": [ROW]}, "'row' holds a list"),
        ({"row": 5}, "row is a number, not an object"),
        ("hello", "The body is a string, not an object"),
    ],
)
def test_a_body_of_the_wrong_shape_is_refused(api, tenant, url, body, phrase):
    r = predict(api, url, body)
    assert r.status_code == 400, r.content
    assert phrase in r.json()["error"]["message"]
    assert [e.status_code for e in events()] == [400]


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b'{"rows": [{"pop": 1},]}', "not valid JSON: Expecting value at line 1, column 22"),
        (b'{"rows": [', "not valid JSON"),
        (b"", "neither 'rows' nor 'row'"),
        ('{"row": {"continent": "Europe"}}'.encode("utf-16"), "not UTF-8"),
        (b'{"row": {"pop": ' + b"9" * 5000 + b"}}", "cannot be read as rows"),
        (b'{"row": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "cannot be read as rows"),
    ],
)
def test_a_body_that_is_no_json_is_refused(api, url, data, phrase):
    # CONTENT_TYPE too: the test client drops the content type of an empty body.
    r = api.post(url, data, content_type="application/json", CONTENT_TYPE="application/json")
    assert r.status_code == 400, r.content
    assert phrase in r.json()["error"]["message"]
    assert [e.status_code for e in events()] == [400]


def test_a_body_over_the_size_limit_is_refused(api, url, settings):
    settings.LEPTON_MAX_PREDICT_BYTES = 1024
    r = predict(api, url, {"rows": [ROW] * 20})
    assert r.status_code == 413
    assert "larger than 1 KB" in r.json()["error"]["message"]
    assert [e.status_code for e in events()] == [413]


@pytest.mark.parametrize(
    ("how", "got"),
    [
        ("multipart", "is a form (multipart/form-data), as for an image"),
        ("raw", "holds an image (image/png)"),
        ("form", "is a form (application/x-www-form-urlencoded)"),
        ("text", "is text/plain"),
        ("nothing", "has no body or no Content-Type"),
    ],
)
def test_an_image_or_form_sent_to_a_regression_endpoint_is_refused(api, tenant, url, how, got):
    if how == "multipart":
        r = api.post(url, {"image": as_file(png_bytes())})
    elif how == "raw":
        r = api.post(url, png_bytes(), content_type="image/png")
    elif how == "form":
        r = api.post(url, "pop=3", content_type="application/x-www-form-urlencoded")
    elif how == "text":
        r = api.post(url, json.dumps({"row": ROW}), content_type="text/plain")
    else:
        r = api.post(url, b"", content_type="")
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "wrong_input"
    assert "predicts 'lifeExp' from table rows sent as JSON, but the request " in error["message"]
    assert got in error["message"]
    assert "Send Content-Type: application/json" in error["message"]
    assert '{"rows": [' in error["message"]
    assert [e.status_code for e in events()] == [400]


def test_json_rows_sent_to_an_image_endpoint_are_refused(api, tenant, tmp_path):
    image_url = deploy(api, seeded_model_version(tenant, tmp_path))
    r = predict(api, image_url, {"rows": [ROW]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "wrong_input"
    assert "This endpoint classifies images" in error["message"]
    assert "multipart form field 'image'" in error["message"]
    assert [e.status_code for e in events()] == [400]


def test_a_paused_regression_endpoint_answers_409(api, tenant, url):
    Endpoint.all_tenants.filter(organization=tenant.organization).update(is_active=False)
    r = predict(api, url, {"row": ROW})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "endpoint_inactive"
    assert [e.status_code for e in events()] == [409]


def test_a_model_file_gone_from_storage_answers_503_not_500(api, tenant, model_version, url):
    default_storage.delete(model_version.file.name)
    r = predict(api, url, {"row": ROW})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "model_unavailable"
    assert "deploy the model version again" in r.json()["error"]["message"]
    assert [e.status_code for e in events()] == [503]


# --- tenants and usage ------------------------------------------------------------------------


def test_another_organizations_key_gets_404_and_leaves_no_usage(client, outsider, url):
    r = client.post(url, json.dumps({"row": ROW}), content_type="application/json", **outsider.auth)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = client.post(url, "not even JSON", content_type="application/json", **outsider.auth)
    assert r.status_code == 404
    assert events() == []


def test_every_call_is_one_usage_event_with_its_status(api, tenant, url, settings):
    settings.LEPTON_MAX_PREDICT_ROWS = 2
    statuses = [
        predict(api, url, {"row": ROW}).status_code,
        predict(api, url, {"rows": [ROW] * 2}).status_code,
        predict(api, url, {"rows": [ROW] * 3}).status_code,
        predict(api, url, {"row": ROW | {"pop": "x"}}).status_code,
        api.post(url, {"image": as_file(png_bytes())}).status_code,
        api.post(url, b"{", content_type="application/json").status_code,
    ]
    assert statuses == [200, 200, 400, 400, 400, 400]
    recorded = events()
    assert [e.status_code for e in recorded] == statuses
    for event in recorded:
        assert event.organization == tenant.organization
        assert event.api_key == tenant.api_key
        assert str(event.endpoint_id) in url
        assert event.latency_ms > 0


def test_the_loaded_regressor_is_cached_per_process(model_version):
    first = predictor_for(file_name=model_version.file.name)
    assert isinstance(first, TabularPredictor)
    assert predictor_for(file_name=model_version.file.name) is first


# --- the endpoint page --------------------------------------------------------------------------


def test_the_page_shows_the_columns_and_a_curl_call_that_works(client, api, tenant, url):
    client.force_login(tenant.user)
    endpoint_id = url.split("/")[-3]
    page = client.get(f"/endpoints/{endpoint_id}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "predicts lifeExp from a table row" in text
    shown = dict(re.findall(r'data-column="([^"]+)" data-kind="([^"]+)"', text))
    assert shown == FEATURES
    assert "yes/no (true or false)" in text
    assert 'id="try-form"' not in text  # the image form is for image endpoints
    curl = html.unescape(re.search(r'data-testid="curl">(.*?)</pre>', text, re.S).group(1))
    assert '-H "Content-Type: application/json"' in curl
    assert curl.rstrip().endswith(f"http://testserver{url}")
    body = re.search(r"-d '(.*)' \\", curl).group(1).replace("'\\''", "'")
    example = json.loads(body)
    assert set(example["rows"][0]) == set(FEATURES)
    assert isinstance(example["rows"][0]["populous"], bool)
    r = predict(api, url, example)  # what the page says to send works as it is
    assert r.status_code == 200, r.content


def test_the_page_offers_a_form_with_a_field_per_column_that_predicts(client, api, tenant, url):
    client.force_login(tenant.user)
    text = client.get(f"/endpoints/{url.split('/')[-3]}/").content.decode()
    form = re.search(r'<form id="try-row-form".*?</form>', text, re.S).group(0)
    fields = dict(re.findall(r'name="([^"]+)"[^>]*data-kind="([^"]+)"', form))
    assert fields == FEATURES
    # A category offers the training table's values; a yes/no column also "missing".
    continents = re.search(r'<datalist id="[^"]+">(.*?)</datalist>', form, re.S).group(1)
    assert set(re.findall(r'value="([^"]+)"', continents)) == {
        "Africa",
        "Americas",
        "Asia",
        "Europe",
        "Oceania",
    }
    assert '<option value="">missing</option>' in form
    # What the fields start from is a row the API answers.
    values = dict(re.findall(r'name="([^"]+)" value="([^"]*)" data-kind', form))
    assert set(values) == set(FEATURES) - {"populous"}
    row = {
        name: float(value) if FEATURES[name] == "numeric" else value
        for name, value in values.items()
    }
    assert predict(api, url, {"row": row}).status_code == 200


def test_the_image_endpoint_page_keeps_its_form(client, api, tenant, tmp_path):
    client.force_login(tenant.user)
    endpoint_id = deploy(api, seeded_model_version(tenant, tmp_path)).split("/")[-3]
    text = client.get(f"/endpoints/{endpoint_id}/").content.decode()
    assert 'id="try-form"' in text
    assert "-F image=@picture.jpg" in text
    assert "data-column=" not in text
