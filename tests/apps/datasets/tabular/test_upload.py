"""Uploading market tables: what customers send is read whole, what cannot be a table is refused.

Every refusal answers 400 at the upload, names the row or column and says how to fix it, and
leaves nothing behind (no dataset, no version, no file). Accepted tables are ingested for real
and the canonical CSV is read back.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from apps.core.jobs import JobStatus
from apps.core.scoping import tenant_scope
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.services import dataset_version_ingest
from apps.datasets.tabular.services import iter_table
from apps.datasets.tabular.splits import SPLIT_COLUMN
from tests.conftest import png_bytes
from tests.support.markets import HEADER, market_csv, market_rows, with_cell

DATASETS = "/api/v1/datasets/"


def media_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def upload_table(api, data: bytes, name: str = "markets.csv"):
    upload = SimpleUploadedFile(name, data, content_type="text/csv")
    return api.post(DATASETS, {"name": "Markets", "kind": "tabular", "file": upload})


def ingest(tenant, response):
    assert response.status_code == 202, response.content
    version = dataset_version_ingest(version_id=response.json()["id"])
    assert version.status == JobStatus.SUCCEEDED, version.error
    return version


def canonical_rows(tenant, version) -> list[list[str]]:
    with tenant_scope(tenant.organization):
        return list(iter_table(version))


def lines(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("markets.csv", market_csv())
    return buffer.getvalue()


#: what Excel's plain "CSV" writes on a western Windows: Côte in Latin-1, other scripts lost
LATIN1 = market_csv().decode().encode("latin-1", "replace")

#: (case, file bytes, pieces of the message); each must be refused with 400 at the upload
CATALOGUE = [
    ("empty file", b"", ["empty"]),
    ("blank lines only", b"\xef\xbb\xbf\r\n\r\n  \n", ["no header and no data"]),
    (
        "missing header",
        market_csv(header=[str(v) for v in market_rows()[0]], rows=market_rows()[1:]),
        ["Row 1", "header is missing", "names each column"],
    ),
    (
        "duplicated header",
        market_csv(header=[*HEADER[:4], "region", *HEADER[5:]]),
        ["more than once", "'region' in columns 2, 5", "rename"],
    ),
    (
        "empty header name",
        market_csv(header=[*HEADER[:2], "", *HEADER[3:]]),
        ["Column 3 has no name"],
    ),
    (
        "ragged row",
        lines(",".join(HEADER), "中国,Asia,1,2,0.5,yes,3", "مصر,Africa,1,2,0.5,3"),
        ["Row 3 has 6 cells", "header names 7 columns"],
    ),
    (
        "unclosed quote",
        lines(",".join(HEADER), '"中国,Asia,1,2,0.5,yes,3', "مصر,Africa,1,2,0.5,no,3"),
        ["Row 2", "quote"],
    ),
    (
        "text in a numeric column",
        market_csv(rows=with_cell(2, "gdp_per_capita", "abc")),
        ["Numeric column 'gdp_per_capita'", "row 4 ('abc')", "declare the column categorical"],
    ),
    (
        "Infinity",
        market_csv(rows=with_cell(5, "population_m", "Infinity")),
        ["'population_m'", "row 7 ('Infinity')", "not a finite number"],
    ),
    (
        "infinity",
        market_csv(rows=with_cell(0, "demand", "-inf")),
        ["'demand'", "row 2 ('-inf')", "not a finite number"],
    ),
    (
        "number too large for a float",
        market_csv(rows=with_cell(1, "demand", "1e999")),
        ["'demand'", "row 3 ('1e999')"],
    ),
    ("Latin-1 bytes", LATIN1, ["Line 10", "not UTF-8", "0xF4", "Save it as UTF-8"]),
    ("UTF-16", market_csv().decode().encode("utf-16"), ["UTF-16", "save it as UTF-8"]),
    ("PNG renamed .csv", png_bytes(), ["PNG image", "not a CSV text file"]),
    ("zip renamed .csv", zip_bytes(), ["zip archive", ".xlsx"]),
    ("NUL bytes", b"market,demand\n" + b"\x00\x01\x02" * 50, ["NUL", "not a text file"]),
    ("header only", market_csv(rows=[]), ["no data rows"]),
    ("a single column", lines("market", "中国", "مصر"), ["single column", "semicolons"]),
    ("reserved column name", market_csv(header=[*HEADER[:6], SPLIT_COLUMN]), ["reserved"]),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE]
)
def test_it_refuses_a_table_it_cannot_read_and_stores_nothing(api, tenant, data, expected):
    before = media_files()
    response = upload_table(api, data)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    for piece in expected:
        assert piece in error["message"]
    assert error["fields"] == {"file": [error["message"]]}
    assert not Dataset.all_tenants.exists()
    assert not DatasetVersion.all_tenants.exists()
    assert media_files() == before


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("LEPTON_MAX_TABLE_COLUMNS", 5, "has 7 columns; at most 5"),
        ("LEPTON_MAX_TABLE_ROWS", 20, "more than 20 data rows"),
        ("LEPTON_MAX_TABLE_BYTES", 100, "a table may be 100 bytes at most"),
    ],
)
def test_it_refuses_a_table_over_a_limit(api, tenant, setting, value, expected):
    with override_settings(**{setting: value}):
        response = upload_table(api, market_csv())
    assert response.status_code == 400
    assert expected in response.json()["error"]["message"]
    assert not DatasetVersion.all_tenants.exists()


@pytest.mark.parametrize(
    ("delimiter", "bom", "decimal_comma", "line_end"),
    [
        (",", False, False, "\r\n"),
        (",", True, False, "\n"),
        (";", False, True, "\r\n"),
        (";", True, True, "\n"),
        ("\t", False, False, "\n"),
        ("\t", True, True, "\r\n"),
    ],
    ids=["comma", "comma-bom", "semicolon", "semicolon-bom", "tab", "tab-bom-decimal-comma"],
)
def test_it_reads_each_delimiter_with_or_without_bom_into_one_canonical_table(
    api, tenant, delimiter, bom, decimal_comma, line_end
):
    data = market_csv(delimiter=delimiter, bom=bom, decimal_comma=decimal_comma, line_end=line_end)
    version = ingest(tenant, upload_table(api, data))
    source = version.schema["source"]
    assert (source["delimiter"], source["bom"]) == (delimiter, bom)
    rows = canonical_rows(tenant, version)
    assert rows[0] == [*HEADER, SPLIT_COLUMN]
    expected = market_rows()
    assert len(rows) - 1 == len(expected) == version.row_count
    for got, want in zip(rows[1:], expected, strict=True):
        assert got[0] == want[0]  # 中国, مصر, Côte d'Ivoire, "Korea, Republic of" intact
        assert got[1] == want[1]
        assert [float(v) for v in got[2:5]] == want[2:5]
        assert got[5] == want[5]
        assert float(got[6]) == want[6]
        assert got[7] in ("train", "validation", "test")
    kinds = {c["name"]: (c["type"], c["role"]) for c in version.schema["columns"]}
    assert kinds == {
        "market": ("text-id", "id"),
        "region": ("categorical", "feature"),
        "population_m": ("numeric", "feature"),
        "gdp_per_capita": ("numeric", "feature"),
        "internet_share": ("numeric", "feature"),
        "coastal": ("boolean", "feature"),
        "demand": ("numeric", "target"),
    }
    assert version.schema["target"] == "demand"
    assert version.health == {"problems": [], "trainable": True}


def test_it_detects_stats_missing_values_splits_and_the_target(api, tenant):
    rows = market_rows()
    rows[3][2] = "NA"
    rows[7][2] = ""
    rows[9][1] = "-"
    version = ingest(tenant, upload_table(api, market_csv(rows=rows)))
    columns = {c["name"]: c for c in version.schema["columns"]}
    population = columns["population_m"]
    assert population["missing"] == 2
    assert population["problems"][0]["code"] == "missing"
    assert population["problems"][0]["rows"] == [5, 9]
    values = [r[2] for r in rows if isinstance(r[2], float)]
    assert population["stats"]["min"] == min(values)
    assert population["stats"]["max"] == max(values)
    assert population["stats"]["mean"] == pytest.approx(sum(values) / len(values))
    region = columns["region"]
    assert region["missing"] == 1
    assert region["unique"] == 4
    assert {t["value"] for t in region["stats"]["top"]} == {"Asia", "Africa", "Europe", "Americas"}
    assert columns["market"]["unique"] == 24
    split = version.schema["split"]
    assert split["column"] == SPLIT_COLUMN
    assert split["counts"] == {"train": 16, "validation": 4, "test": 4}
    assert version.split_ratios == {"train": 0.7, "validation": 0.15, "test": 0.15}
    codes = {p["code"] for p in version.health["problems"]}
    assert codes == {"missing"}  # warnings only: still trainable
    assert version.health["trainable"] is True
    canonical = canonical_rows(tenant, version)
    assert canonical[4][2] == "" and canonical[8][2] == "" and canonical[10][1] == ""


def test_it_reads_none_and_nan_as_missing_as_training_does(api, tenant):
    rows = market_rows()
    rows[3][2] = "NaN"
    rows[7][2] = "nan"
    rows[9][1] = "None"
    version = ingest(tenant, upload_table(api, market_csv(rows=rows)))
    columns = {c["name"]: c for c in version.schema["columns"]}
    assert columns["population_m"]["type"] == "numeric"
    assert columns["population_m"]["missing"] == 2
    assert columns["region"]["missing"] == 1
    assert "None" not in {t["value"] for t in columns["region"]["stats"]["top"]}
    assert version.health["trainable"] is True
    canonical = canonical_rows(tenant, version)
    assert canonical[4][2] == "" and canonical[8][2] == "" and canonical[10][1] == ""


def test_it_draws_the_same_splits_for_the_same_table_and_seed(api, tenant):
    first = ingest(tenant, upload_table(api, market_csv()))
    second = ingest(tenant, upload_table(api, market_csv(delimiter=";", decimal_comma=True)))
    splits = [[row[-1] for row in canonical_rows(tenant, v)[1:]] for v in (first, second)]
    assert splits[0] == splits[1]
    assert sorted(set(splits[0])) == ["test", "train", "validation"]


def test_it_reports_what_blocks_training(api, tenant):
    rows = market_rows(8)
    rows[2][6] = ""
    version = ingest(tenant, upload_table(api, market_csv(rows=rows)))
    blocking = {p["code"]: p["message"] for p in version.health["problems"]}
    assert version.health["trainable"] is False
    assert "target 'demand' is empty in 1 row (row 4)" in blocking["target_missing"]
    assert "8 rows; a model needs at least 10" in blocking["too_few_rows"]


def test_it_says_when_no_column_can_be_the_target(api, tenant):
    data = lines("market,region", *[f"m{i},{'north' if i % 2 else 'south'}" for i in range(12)])
    version = ingest(tenant, upload_table(api, data))
    assert version.schema["target"] is None
    assert [p["code"] for p in version.health["problems"]][:1] == ["no_target"]
    assert version.health["trainable"] is False


def test_it_keeps_a_column_of_numbers_and_words_as_categorical_with_a_warning(api, tenant):
    rows = market_rows()
    for i in range(0, 24, 3):
        rows[i][4] = "unknown"
    version = ingest(tenant, upload_table(api, market_csv(rows=rows)))
    column = next(c for c in version.schema["columns"] if c["name"] == "internet_share")
    assert column["type"] == "categorical"
    assert column["problems"][0]["code"] == "mixed"
    assert (
        "(rows 2 ('unknown'), 5 ('unknown'), 8 ('unknown'), 11 ('unknown'), 14 ('unknown'), …)"
        in (column["problems"][0]["message"])
    )


def test_it_neutralises_formula_cells_in_the_canonical_table(api, tenant):
    rows = market_rows()
    rows[0][0] = "=cmd|' /C calc'!A0"
    rows[1][0] = "@SUM(1+1)*cmd|' /C calc'!A0"
    rows[2][1] = "+Asia"
    rows[3][6] = -3.5
    header = [*HEADER[:5], '=HYPERLINK("http://x")', HEADER[6]]
    version = ingest(tenant, upload_table(api, market_csv(header=header, rows=rows)))
    canonical = canonical_rows(tenant, version)
    assert canonical[0][5] == '\'=HYPERLINK("http://x")'
    assert canonical[1][0] == "'=cmd|' /C calc'!A0"
    assert canonical[2][0] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert canonical[3][1] == "'+Asia"
    assert canonical[4][6] == "-3.5"  # a signed number stays a number
    names = [c["name"] for c in version.schema["columns"]]
    assert names[5] == '\'=HYPERLINK("http://x")'  # the schema names match the canonical header
    with tenant_scope(tenant.organization):
        raw = version.data_file.open("rb").read().decode()
    assert "\n=" not in raw and ",=" not in raw and ",@" not in raw and ",+" not in raw


def test_it_fails_the_job_with_the_reason_when_the_stored_file_is_broken(api, tenant):
    response = upload_table(api, market_csv())
    assert response.status_code == 202
    with tenant_scope(tenant.organization):
        version = DatasetVersion.objects.get(pk=response.json()["id"])
        with version.source.open("wb") as handle:  # damaged after the upload check
            handle.write(lines(",".join(HEADER), "中国,Asia,1,2"))
    version = dataset_version_ingest(version_id=version.pk)
    assert version.status == JobStatus.FAILED
    assert "Row 2 has 4 cells but the header names 7 columns" in version.message
    assert not version.data_file


def test_it_reads_a_table_back_the_same_after_a_second_ingestion(api, tenant):
    version = ingest(tenant, upload_table(api, market_csv()))
    first = canonical_rows(tenant, version)
    DatasetVersion.all_tenants.filter(pk=version.pk).update(status=JobStatus.QUEUED)
    again = dataset_version_ingest(version_id=version.pk)
    assert again.status == JobStatus.SUCCEEDED
    assert canonical_rows(tenant, again) == first
    folder = Path(settings.MEDIA_ROOT) / Path(again.data_file.name).parent
    assert sorted(p.name for p in folder.iterdir()) == ["source.csv", "table.csv"]


def test_it_writes_the_canonical_table_as_plain_comma_separated_utf8(api, tenant):
    data = market_csv(delimiter="\t", bom=True, decimal_comma=True)
    version = ingest(tenant, upload_table(api, data))
    with tenant_scope(tenant.organization):
        raw = version.data_file.open("rb").read()
    assert not raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8")
    assert "\r" not in text and "\t" not in text
    header = next(csv.reader(io.StringIO(text)))
    assert header == [*HEADER, SPLIT_COLUMN]
    assert version.stored_bytes == len(raw)
