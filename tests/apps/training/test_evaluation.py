"""The evaluation a customer reads (run page section, leaderboard page) and the API behind it.

Models are trained for real on generated shapes. One data set adds a fourth class, "round",
drawn exactly like "circle", so the model cannot tell the two apart and the evaluation is sure
to hold mistakes. Every number the page shows is checked against the stored evaluation, and
the averages are recomputed here from the confusion matrix alone.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from html.parser import HTMLParser
from typing import Any

import pytest

from apps.core.scoping import tenant_scope
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion
from apps.training.models import ModelConfig, ModelVersion, TrainingRun
from tests.conftest import trained_model_version, zip_upload
from tests.support.shapes import make_class_zip
from workers.ml.metrics import evaluate_regression

pytestmark = pytest.mark.django_db

VOID = {"img", "input", "br", "hr", "meta", "link", "source", "wbr"}


class Page(HTMLParser):
    """The elements of a page that carry data-testid: tag, attributes and text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []
        self.html = html
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        if "data-testid" in element["attrs"]:
            self.found.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        if any(e["tag"] == tag for e in self._open):
            while self._open.pop()["tag"] != tag:
                pass

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element["text"] += data

    def all(self, testid: str) -> list[dict[str, Any]]:
        return [e for e in self.found if e["attrs"]["data-testid"] == testid]

    def one(self, testid: str) -> dict[str, Any]:
        found = self.all(testid)
        assert len(found) == 1, (testid, len(found))
        return found[0]

    def value(self, testid: str) -> float:
        return float(self.one(testid)["attrs"]["data-value"])


def confusable_zip(per_class: int = 24) -> bytes:
    """Shapes (circle, square, triangle) plus "round": more circles, indistinguishable, and
    half as many again, so class supports differ and weighted averages differ from macro."""
    shapes = zipfile.ZipFile(io.BytesIO(make_class_zip(per_class=per_class, seed=3)))
    twins = zipfile.ZipFile(
        io.BytesIO(make_class_zip(per_class=per_class * 3 // 2, seed=4, classes=("circle",)))
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in shapes.namelist():
            archive.writestr(name, shapes.read(name))
        for name in twins.namelist():
            archive.writestr("round/" + name.split("/", 1)[1], twins.read(name))
    return buffer.getvalue()


def confusable_version(tenant):
    from apps.datasets.services import dataset_create, dataset_version_ingest

    version = dataset_create(
        organization=tenant.organization,
        user=tenant.user,
        name="confusable shapes",
        upload=zip_upload(confusable_zip()),
    )
    return dataset_version_ingest(version_id=version.pk)


@pytest.fixture
def confused(tenant):
    """A model version trained for real on `confusable_version`: it has mistakes."""
    model_version = trained_model_version(tenant, confusable_version(tenant), epochs=3)
    assert model_version.evaluation["mistakes"], "the twin classes should have been confused"
    return model_version


def run_page(client, tenant, model_version) -> Page:
    client.force_login(tenant.user)
    response = client.get(f"/models/runs/{model_version.run_id}/")
    assert response.status_code == 200
    return Page(response.content.decode())


def recomputed_averages(confusion: list[list[int]]) -> dict[str, float]:
    """Macro (over classes present in truth or predictions) and support-weighted precision,
    recall and F1, from the confusion matrix alone (rows true, columns predicted)."""
    n = len(confusion)
    support = [sum(confusion[i]) for i in range(n)]
    predicted = [sum(confusion[i][j] for i in range(n)) for j in range(n)]
    precision = [confusion[i][i] / predicted[i] if predicted[i] else 0.0 for i in range(n)]
    recall = [confusion[i][i] / support[i] if support[i] else 0.0 for i in range(n)]
    f1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(precision, recall, strict=True)]
    present = [i for i in range(n) if support[i] or predicted[i]]
    total = sum(support)
    out = {}
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"macro_{name}"] = sum(values[i] for i in present) / len(present)
        out[f"weighted_{name}"] = sum(v * s for v, s in zip(values, support, strict=True)) / total
    return out


def test_it_shows_macro_and_weighted_averages_that_match_the_confusion_matrix(
    client, tenant, outsider, confused
):
    evaluation = confused.evaluation
    expected = recomputed_averages(evaluation["confusion"])

    page = run_page(client, tenant, confused)

    for key, value in expected.items():
        assert evaluation[key] == pytest.approx(value), key
        kind, metric = key.split("_")
        assert page.value(f"{kind}-{metric}") == pytest.approx(value, abs=1e-9), key
    diagonal = sum(evaluation["confusion"][i][i] for i in range(len(evaluation["labels"])))
    assert page.value("eval-accuracy") == pytest.approx(diagonal / evaluation["count"])
    assert int(page.one("eval-count")["text"]) == evaluation["count"]
    # Not one number shown several times: the twins cost F1, supports differ between classes.
    assert expected["macro_f1"] < 1.0
    assert expected["macro_precision"] != pytest.approx(expected["weighted_precision"])
    assert expected["macro_f1"] != pytest.approx(expected["weighted_f1"])


def test_it_draws_a_heat_map_cell_for_every_confusion_entry(client, tenant, outsider, confused):
    evaluation = confused.evaluation
    labels, confusion = evaluation["labels"], evaluation["confusion"]

    cells = run_page(client, tenant, confused).all("heat-cell")

    assert len(cells) == len(labels) ** 2
    seen = {}
    for cell in cells:
        a = cell["attrs"]
        i, j = labels.index(a["data-true"]), labels.index(a["data-predicted"])
        count, total = confusion[i][j], sum(confusion[i])
        seen[i, j] = count
        assert int(a["data-count"]) == int(cell["text"]) == count
        assert float(a["data-share"]) == pytest.approx(count / total)
        # The colour: the diagonal's scale (d) or the mistakes' (o), stepped by the row share.
        step = math.ceil(10 * count / total) if count else 0
        assert f"{'d' if i == j else 'o'}{step}" in a["class"].split()
        assert f"{count} of {total}" in a["title"]
    assert seen == {(i, j): confusion[i][j] for i in range(len(labels)) for j in range(len(labels))}
    # The twins are confused: at least one coloured cell off the diagonal.
    assert any(confusion[i][j] for i in range(len(labels)) for j in range(len(labels)) if i != j)


def test_the_mistakes_gallery_shows_the_items_the_model_got_wrong(
    client, tenant, outsider, confused
):
    evaluation = confused.evaluation
    version = confused.model_config.dataset_version

    page = run_page(client, tenant, confused)
    tiles = page.all("mistake")
    thumbnails = page.all("mistake-thumbnail")

    assert [t["attrs"]["data-item"] for t in tiles] == [m["item"] for m in evaluation["mistakes"]]
    confidences = [float(t["attrs"]["data-confidence"]) for t in tiles]
    assert confidences == sorted(confidences, reverse=True)
    with tenant_scope(tenant.organization):
        found = DatasetItem.objects.in_bulk([t["attrs"]["data-item"] for t in tiles])
    items = {str(pk): item for pk, item in found.items()}
    for tile, thumbnail, mistake in zip(tiles, thumbnails, evaluation["mistakes"], strict=True):
        item = items[tile["attrs"]["data-item"]]
        assert item.version_id == version.pk
        assert item.split == evaluation["split"]
        assert item.label == mistake["true"] == tile["attrs"]["data-true"]
        assert mistake["predicted"] == tile["attrs"]["data-predicted"] != item.label
        assert thumbnail["attrs"]["src"] == f"/datasets/items/{item.pk}/thumbnail/"
        image = client.get(thumbnail["attrs"]["src"])
        assert image.status_code == 200
        assert image["Content-Type"].startswith("image/")
    assert page.all("mistakes-missing") == []


def test_a_deleted_item_leaves_the_gallery_and_is_counted(client, tenant, outsider, confused):
    gone = confused.evaluation["mistakes"][0]["item"]
    DatasetItem.all_tenants.filter(pk=gone).delete()

    page = run_page(client, tenant, confused)

    shown = [t["attrs"]["data-item"] for t in page.all("mistake")]
    assert gone not in shown
    assert len(shown) == len(confused.evaluation["mistakes"]) - 1
    assert "1 more mistake is not shown" in page.one("mistakes-missing")["text"]


def _stored_version(tenant, version, *, task: str, evaluation: dict, score: float, **run):
    """A ModelVersion row as an earlier release (or another trainer) stored it."""
    template = "linear" if task == "tabular-regression" else "leptonnet"
    config = ModelConfig.all_tenants.create(
        organization=tenant.organization,
        name=f"stored {task}",
        template=template,
        dataset_version=version,
        hyperparameters={"epochs": 4},
    )
    training = TrainingRun.all_tenants.create(
        organization=tenant.organization,
        model_config=config,
        status="succeeded",
        epoch=4,
        total_epochs=4,
        device="cpu",
        **run,
    )
    return ModelVersion.all_tenants.create(
        organization=tenant.organization,
        model_config=config,
        run=training,
        number=1,
        file="orgs/none.pt",
        template=template,
        task=task,
        accuracy=score,
        evaluation=evaluation,
    )


def test_an_evaluation_stored_before_weighted_averages_and_mistakes_still_renders(
    client, tenant, outsider, ready_version
):
    old = {
        "labels": ["cat", "dog"],
        "accuracy": 0.75,
        "macro_precision": 0.75,
        "macro_recall": 0.8,
        "macro_f1": 0.7333,
        "per_class": [
            {"label": "cat", "precision": 1.0, "recall": 0.6, "f1": 0.75, "support": 5},
            {"label": "dog", "precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 3},
        ],
        "confusion": [[3, 2], [0, 3]],
        "count": 8,
        "split": "test",
    }
    model_version = _stored_version(
        tenant, ready_version, task="image-classification", evaluation=old, score=0.75
    )

    page = run_page(client, tenant, model_version)

    assert page.value("weighted-precision") == pytest.approx((1.0 * 5 + 0.5 * 3) / 8)
    assert page.value("weighted-recall") == pytest.approx((0.6 * 5 + 1.0 * 3) / 8)
    assert page.value("weighted-f1") == pytest.approx((0.75 * 5 + 0.6667 * 3) / 8)
    assert [int(c["attrs"]["data-count"]) for c in page.all("heat-cell")] == [3, 2, 0, 3]
    assert page.all("mistake") == []
    assert "before mistakes were recorded" in page.one("no-mistakes")["text"]


def regression_evaluation() -> dict:
    actual = [10.0, 12.5, 15.0, 20.0, 22.0, 30.0, 41.0]
    predicted = [11.0, 12.5, 13.0, 21.5, 22.0, 26.0, 44.0]
    evaluation = evaluate_regression(actual, predicted, target="price").to_dict()
    for pair in evaluation["pairs"]:
        pair["row"] = pair["index"] + 2
        pair["name"] = f"shop-{pair['index']}"
    return evaluation | {"split": "test", "skipped_rows": 2}


def test_it_renders_a_regression_evaluation_with_a_predicted_against_actual_chart(
    client, tenant, outsider, ready_version
):
    evaluation = regression_evaluation()
    model_version = _stored_version(
        tenant,
        ready_version,
        task="tabular-regression",
        evaluation=evaluation,
        score=evaluation["r2"],
    )

    response = run_page(client, tenant, model_version)
    html = response.html

    assert response.value("eval-mae") == pytest.approx(evaluation["mae"])
    assert response.value("eval-rmse") == pytest.approx(evaluation["rmse"])
    assert response.value("eval-r2") == pytest.approx(evaluation["r2"])
    assert "On average a predicted price is" in html
    assert f"explains {round(evaluation['r2'] * 100)} %" in html
    assert "2 rows of the table were left out" in html
    assert response.all("heat-cell") == [] and response.all("averages") == []
    chart = response.one("scatter")
    assert int(chart["attrs"]["data-points"]) == len(evaluation["pairs"])
    assert "row 2 (shop-0): actual 10, predicted 11" in chart["text"]
    assert "actual price" in chart["text"] and "predicted price" in chart["text"]

    # Points use one scale on both axes: an exact prediction lies on the drawn diagonal.
    line = response.one("diagonal")["attrs"]
    x1, y1, x2, y2 = (float(line[k]) for k in ("x1", "y1", "x2", "y2"))
    assert x2 > x1 and y2 < y1  # bottom left to top right
    circles = _circles(html)
    assert len(circles) == len(evaluation["pairs"])
    for (cx, cy), pair in zip(circles, evaluation["pairs"], strict=True):
        on_line = y1 + (cx - x1) * (y2 - y1) / (x2 - x1)
        if pair["actual"] == pair["predicted"]:
            assert cy == pytest.approx(on_line, abs=0.2)
        elif pair["predicted"] > pair["actual"]:
            assert cy < on_line  # above the diagonal: predicted too high
        else:
            assert cy > on_line
    misses = response.one("largest-misses")["text"]
    assert misses.index("shop-5") < misses.index("shop-6") < misses.index("shop-2")


def _circles(html: str) -> list[tuple[float, float]]:
    found = re.findall(r'<circle class="dot[^"]*" cx="([-\d.]+)" cy="([-\d.]+)"', html)
    return [(float(x), float(y)) for x, y in found]


# --- the API ---------------------------------------------------------------------------------


def test_the_api_answers_weighted_averages_and_mistakes_with_their_items(
    api, tenant, outsider, confused
):
    for path in (
        f"/api/v1/runs/{confused.run_id}/evaluation/",
        f"/api/v1/model-versions/{confused.pk}/",
    ):
        r = api.get(path)
        assert r.status_code == 200, path
        evaluation = r.json()["evaluation"]
        assert r.json()["task"] == "image-classification"
        expected = recomputed_averages(evaluation["confusion"])
        for key, value in expected.items():
            assert evaluation[key] == pytest.approx(value), (path, key)
        assert evaluation["split"] == "test"
        assert [c["label"] for c in evaluation["per_class"]] == evaluation["labels"]
        assert evaluation["mistakes"] == confused.evaluation["mistakes"]
        for mistake in evaluation["mistakes"]:
            assert set(mistake) >= {"index", "true", "predicted", "confidence", "item"}
            item = api.get(f"/api/v1/dataset-items/{mistake['item']}/")
            assert item.status_code == 200
            assert item.json()["label"] == mistake["true"]
            assert api.get(f"/api/v1/dataset-items/{mistake['item']}/thumbnail/").status_code == 200


def test_the_api_answers_regression_pairs_with_their_rows(api, tenant, outsider, ready_version):
    evaluation = regression_evaluation()
    model_version = _stored_version(
        tenant,
        ready_version,
        task="tabular-regression",
        evaluation=evaluation,
        score=evaluation["r2"],
    )

    r = api.get(f"/api/v1/model-versions/{model_version.pk}/")

    assert r.status_code == 200
    body = r.json()["evaluation"]
    assert {k: body[k] for k in ("mae", "rmse", "r2", "count", "target", "skipped_rows")} == {
        k: evaluation[k] for k in ("mae", "rmse", "r2", "count", "target", "skipped_rows")
    }
    assert body["pairs"][0] == {
        "index": 0,
        "actual": 10.0,
        "predicted": 11.0,
        "row": 2,
        "name": "shop-0",
    }
    assert len(body["pairs"]) == 7


# --- the leaderboard -------------------------------------------------------------------------


def leaderboard_page(client, tenant, dataset) -> Page:
    client.force_login(tenant.user)
    response = client.get(f"/models/datasets/{dataset.pk}/leaderboard/")
    assert response.status_code == 200
    return Page(response.content.decode())


def test_the_leaderboard_ranks_the_models_of_a_dataset_by_accuracy(
    client, api, tenant, outsider, ready_version
):
    strong = trained_model_version(tenant, ready_version, epochs=4)
    assert strong.accuracy > 0
    # Stored after the trained one, so newest-first would put it on top: ranking must not.
    weak = _stored_version(
        tenant,
        ready_version,
        task="image-classification",
        evaluation=strong.evaluation
        | {"accuracy": strong.accuracy / 2, "macro_f1": 0.1, "weighted_f1": 0.1},
        score=strong.accuracy / 2,
    )
    dataset = ready_version.dataset

    api_board = api.get(f"/api/v1/datasets/{dataset.pk}/leaderboard/").json()
    rows = leaderboard_page(client, tenant, dataset).all("leaderboard-row")

    assert api_board["metric"] == "accuracy"
    assert [e["model_version"] for e in api_board["entries"]] == [str(strong.pk), str(weak.pk)]
    assert [e["rank"] for e in api_board["entries"]] == [1, 2]
    first = api_board["entries"][0]
    assert first["accuracy"] == strong.accuracy
    assert first["macro_f1"] == strong.evaluation["macro_f1"]
    assert first["weighted_f1"] == strong.evaluation["weighted_f1"]
    assert first["run"] == str(strong.run_id) and first["epochs"] == 4
    assert [r["attrs"]["data-model-version"] for r in rows] == [str(strong.pk), str(weak.pk)]
    assert [float(r["attrs"]["data-score"]) for r in rows] == [strong.accuracy, weak.accuracy]
    assert "best" in rows[0]["attrs"]["class"].split()
    assert "best" not in rows[1]["attrs"]["class"].split()
    page = leaderboard_page(client, tenant, dataset)
    links = [a["attrs"]["href"] for a in page.all("leaderboard-run")]
    assert links == [f"/models/runs/{strong.run_id}/", f"/models/runs/{weak.run_id}/"]
    # Linked from the run page's evaluation and from the dataset version page.
    assert run_page(client, tenant, weak).one("leaderboard-link")["attrs"]["href"] == (
        f"/models/datasets/{dataset.pk}/leaderboard/"
    )
    version_page = Page(client.get(f"/datasets/versions/{ready_version.pk}/").content.decode())
    assert version_page.one("leaderboard-link")["attrs"]["href"] == (
        f"/models/datasets/{dataset.pk}/leaderboard/"
    )


def test_the_leaderboard_breaks_ties_of_accuracy_by_macro_f1(
    client, tenant, outsider, ready_version
):
    base = {"labels": ["a", "b"], "per_class": [], "confusion": [[1, 0], [0, 1]], "count": 2}
    rows = {}
    for name, f1 in (("lower", 0.5), ("higher", 0.7), ("lowest", 0.2)):
        rows[name] = _stored_version(
            tenant,
            ready_version,
            task="image-classification",
            evaluation=base | {"accuracy": 0.8, "macro_f1": f1},
            score=0.8,
        )

    page = leaderboard_page(client, tenant, ready_version.dataset)

    shown = [r["attrs"]["data-model-version"] for r in page.all("leaderboard-row")]
    assert shown == [str(rows[n].pk) for n in ("higher", "lower", "lowest")]


def test_the_leaderboard_ranks_regressors_by_r2_and_shows_their_errors(client, tenant, outsider):
    dataset = Dataset.all_tenants.create(
        organization=tenant.organization, name="prices", kind="tabular"
    )
    version = DatasetVersion.all_tenants.create(
        organization=tenant.organization, dataset=dataset, number=1, status="succeeded"
    )
    good = regression_evaluation()
    bad = good | {"mae": 9.5, "rmse": 12.25, "r2": -0.4}
    worse = _stored_version(
        tenant, version, task="tabular-regression", evaluation=bad, score=bad["r2"]
    )
    better = _stored_version(
        tenant, version, task="tabular-regression", evaluation=good, score=good["r2"]
    )

    page = leaderboard_page(client, tenant, dataset)

    rows = page.all("leaderboard-row")
    assert [r["attrs"]["data-model-version"] for r in rows] == [str(better.pk), str(worse.pk)]
    assert page.one("leaderboard")["attrs"]["data-metric"] == "r2"
    assert "12.25" in rows[1]["text"] and "9.5" in rows[1]["text"]


def test_the_leaderboard_of_a_dataset_without_models_says_so(
    client, tenant, outsider, ready_version
):
    page = leaderboard_page(client, tenant, ready_version.dataset)

    assert page.all("leaderboard-row") == []
    assert "No model has been trained" in page.one("leaderboard-empty")["text"]


def test_the_leaderboard_answers_404_to_another_organization(
    client, tenant, outsider, ready_version
):
    trained_model_version(tenant, ready_version, epochs=1)
    dataset = ready_version.dataset

    assert (
        client.get(f"/api/v1/datasets/{dataset.pk}/leaderboard/", **outsider.auth).status_code
        == 404
    )
    client.force_login(outsider.user)
    response = client.get(f"/models/datasets/{dataset.pk}/leaderboard/")
    assert response.status_code == 404
    assert b"shapes model" not in response.content
    client.force_login(tenant.user)
    assert client.get(f"/models/datasets/{dataset.pk}/leaderboard/").status_code == 200
