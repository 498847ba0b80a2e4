"""Training pages: the low-code model form, the live run page's first paint, the models list.

The form is built from the template catalogue and validated by the service; these tests read
the rendered HTML the way a browser would get it, with an outsider organization beside.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from apps.core.jobs import JobStatus
from apps.core.scoping import tenant_scope
from apps.datasets.models import DatasetVersion
from apps.datasets.services import dataset_create, dataset_version_ingest
from apps.training.curves import nice_ceiling, run_charts
from apps.training.forms import plain_number
from apps.training.models import EpochMetric, ModelConfig, ModelVersion, TrainingRun
from apps.training.services import model_config_create, training_run_start
from apps.training.templates import TEMPLATES
from apps.training.templatetags.training_live import eta, percent, queue_text
from tests.apps.datasets.tabular.test_confirm import tabular_version
from tests.conftest import trained_model_version, zip_upload

NEW = "/models/new/"


@pytest.fixture
def member(client, tenant):
    client.force_login(tenant.user)
    return client


@pytest.fixture
def table(tenant):
    """A ready (ingested, not yet confirmed) table of market data."""
    return tabular_version(tenant)


def field_html(html: str, name: str) -> str:
    """The markup of one form field (its wrapper div, up to the next field)."""
    match = re.search(
        rf'<div class="field[^"]*" data-field="{re.escape(name)}".*?'
        r'(?=<div class="field|</section>)',
        html,
        re.S,
    )
    assert match, f"no field {name!r} on the page"
    return match.group(0)


def knob_inputs(html: str) -> set[str]:
    page = html.split("</header>", 1)[-1]  # the header's organization switcher has its own form
    return set(re.findall(r'<(?:input|select)[^>]*\bname="([^"]+)"', page)) - {
        "csrfmiddlewaretoken",
        "template",
        "name",
        "dataset_version",
    }


def form_data(version, template: str = "leptonnet", **knobs) -> dict:
    return {"name": "Shelf model", "template": template, "dataset_version": str(version.pk)} | knobs


# --- the form ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(TEMPLATES))
def test_it_renders_every_knob_of_every_template_with_its_help(member, ready_version, table, key):
    template = TEMPLATES[key]
    response = member.get(NEW, {"template": key})
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<input type="hidden" name="template" value="{key}"' in html
    # Image templates also take an optional weights file (tests/apps/training/test_weights.py).
    weights = {"weights"} if template.task == "image-classification" else set()
    assert knob_inputs(html) == {k.name for k in template.knobs} | weights
    for knob in template.knobs:
        field = field_html(html, knob.name)
        assert escape(knob.label) in field
        assert escape(knob.help) in field, knob.name
        if knob.kind == "bool":
            # The hidden "false" comes before the checkbox: the view reads the last value.
            assert re.search(
                rf'<input type="hidden" name="{knob.name}" value="false">\s*<label[^>]*>\s*'
                rf'<input type="checkbox" id="id_{knob.name}" name="{knob.name}" value="true"',
                field,
            ), field
            assert (" checked" in field) is bool(knob.default)
        elif knob.kind == "choice":
            options = re.findall(r'<option value="([^"]+)"( selected)?>', field)
            assert [v for v, _ in options] == list(knob.choices)
            assert [v for v, sel in options if sel] == [knob.default]
        else:
            tag = re.search(rf'<input type="number"[^>]*name="{knob.name}"[^>]*>', field, re.S)
            assert tag, field
            assert f'value="{plain_number(knob.default)}"' in tag.group(0)
            step = "any" if knob.kind == "float" else "1"
            assert f'step="{step}"' in tag.group(0)
            # No browser-side range: the service's message says what is allowed.
            assert not re.search(r"\s(min|max)=", tag.group(0))
            assert plain_number(knob.maximum) in field


def test_it_groups_the_knobs_and_folds_regularisation_and_augmentation(member, ready_version):
    html = member.get(NEW).content.decode()
    training = re.search(
        r'<fieldset class="knob-group" data-testid="group-training">.*?</fieldset>', html, re.S
    )
    assert training and 'name="epochs"' in training.group(0)
    for group, knob in (("regularisation", "weight_decay"), ("augmentation", "flip")):
        folded = re.search(
            rf'<details class="knob-group" data-testid="group-{group}">.*?</details>', html, re.S
        )
        assert folded, group  # folded: no "open" attribute while every value is the default
        assert f'name="{knob}"' in folded.group(0)
        assert 'name="epochs"' not in folded.group(0)


def test_it_starts_with_the_dataset_version_it_was_sent_from(member, ready_version, table):
    html = member.get(NEW, {"dataset_version": str(ready_version.pk)}).content.decode()
    assert re.search(rf'<option value="{ready_version.pk}" selected>', html)
    # A table picks a template for tables.
    html = member.get(NEW, {"dataset_version": str(table.pk)}).content.decode()
    assert '<input type="hidden" name="template" value="linear"' in html
    assert re.search(rf'<option value="{table.pk}" selected>', html)


def test_switching_template_shows_its_knobs_and_only_datasets_it_can_learn_from(
    member, ready_version, table, outsider
):
    html = member.get(NEW, {"template": "resnet18"}).content.decode()
    assert 'class="template-card selected" href="?template=resnet18"' in html
    assert re.search(r'<input type="checkbox" id="id_pretrained" name="pretrained"', html)
    versions = re.findall(r'<option value="([0-9a-f-]{36})"', field_html(html, "dataset_version"))
    assert versions == [str(ready_version.pk)]
    assert "12 images" not in html or "3 classes" in html

    html = member.get(NEW, {"template": "mlp"}).content.decode()
    assert 'name="pretrained"' not in html
    assert 'name="input_size"' not in html
    assert 'name="hidden_size"' in html
    versions = re.findall(r'<option value="([0-9a-f-]{36})"', field_html(html, "dataset_version"))
    assert versions == [str(table.pk)]
    assert "columns not confirmed yet" in html


def test_a_template_without_fitting_data_says_so(member, ready_version):
    html = member.get(NEW, {"template": "linear"}).content.decode()
    assert 'data-testid="no-fitting-versions"' in html
    assert "No table of market data is ready yet." in html


def test_without_any_ready_dataset_it_sends_you_to_upload_one(member, tenant):
    html = member.get(NEW).content.decode()
    assert 'data-testid="no-datasets"' in html
    assert 'data-testid="model-form"' not in html


@pytest.mark.parametrize(
    ("knob", "typed", "says"),
    [
        ("epochs", "0", "epochs must be a whole number between 1 and 200; got '0'."),
        ("optimizer", "bogus", "optimizer must be one of: adamw, sgd; got 'bogus'."),
        ("learning_rate", "abc", "learning_rate must be a number between 1e-05 and 1.0"),
        ("brightness", "2", "brightness must be a number between 0.0 and 1.0; got '2'."),
        ("flip", "maybe", "flip must be true or false; got 'maybe'."),
    ],
)
def test_a_bad_value_comes_back_beside_its_field_as_typed(
    member, ready_version, outsider, knob, typed, says
):
    data = form_data(ready_version, batch_size="8", **{knob: typed})
    response = member.post(NEW, data)
    html = response.content.decode()
    assert response.status_code == 400
    field = field_html(html, knob)
    assert 'class="field knob' in field and " invalid" in field.split(">")[0]
    assert escape(says) in field
    assert 'aria-invalid="true"' in field
    # ... and at the top of the page.
    top = re.search(r'data-testid="form-error">(.*?)</div>', html, re.S)
    assert top and escape(says) in top.group(1)
    # What was typed stays: the refused value, the other knobs, the name and the dataset.
    if knob == "optimizer":
        assert f'<option value="{typed}" selected>' in field
    elif knob == "flip":
        assert "checked" not in field
    else:
        assert f'value="{typed}"' in field
    assert 'value="8"' in field_html(html, "batch_size")
    assert 'value="Shelf model"' in field_html(html, "name")
    assert re.search(rf'<option value="{ready_version.pk}" selected>', html)
    # A folded group holding the refused field is open.
    if knob in ("brightness", "flip"):
        assert '<details class="knob-group" data-testid="group-augmentation" open>' in html
    assert not ModelConfig.all_tenants.exists()
    assert not TrainingRun.all_tenants.exists()


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"name": "  "}, "name", "Name the model."),
        ({"dataset_version": ""}, "dataset_version", "Choose a ready dataset version"),
        ({"dataset_version": str(uuid.uuid4())}, "dataset_version", "Choose a ready dataset"),
        ({"template": "gpt-17"}, "template", "Unknown template &#x27;gpt-17&#x27;"),
    ],
)
def test_a_bad_name_dataset_or_template_is_shown_where_it_was_chosen(
    member, ready_version, change, field, says
):
    response = member.post(NEW, form_data(ready_version) | change)
    html = response.content.decode()
    assert response.status_code == 400
    shown = re.search(rf'data-testid="field-error-{field}">(.*?)</p>', html, re.S)
    assert shown and says in shown.group(1)
    assert not ModelConfig.all_tenants.exists()


def test_another_organizations_dataset_version_is_neither_offered_nor_accepted(
    client, ready_version, outsider
):
    client.force_login(outsider.user)
    html = client.get(NEW).content.decode()
    assert str(ready_version.pk) not in html
    response = client.post(NEW, form_data(ready_version))
    assert response.status_code == 400
    assert not ModelConfig.all_tenants.exists()


@pytest.mark.parametrize(
    ("flip", "expected"), [(["false"], False), (["false", "true"], True)], ids=["off", "on"]
)
def test_a_valid_form_creates_the_model_with_typed_values_and_opens_its_run(
    member, tenant, ready_version, outsider, flip, expected
):
    data = form_data(
        ready_version,
        "leptonnet-m",
        epochs="3",
        learning_rate="0.01",
        optimizer="sgd",
        schedule="cosine",
        brightness="0.2",
        flip=flip,
        batch_size="",  # blank: the default
    )
    response = member.post(NEW, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    config = ModelConfig.all_tenants.get()
    run = TrainingRun.all_tenants.get()
    assert response["Location"] == reverse("training:run", kwargs={"pk": run.pk})
    assert config.organization == tenant.organization
    assert config.name == "Shelf model"
    assert config.template == "leptonnet-m"
    settings = config.hyperparameters
    assert settings["epochs"] == 3 and type(settings["epochs"]) is int
    assert settings["learning_rate"] == 0.01 and type(settings["learning_rate"]) is float
    assert settings["optimizer"] == "sgd" and settings["schedule"] == "cosine"
    assert settings["brightness"] == 0.2
    assert settings["flip"] is expected
    assert settings["batch_size"] == 32
    assert settings["input_size"] == 64  # LeptonNet-M's default
    assert run.hyperparameters == settings
    assert run.total_epochs == 3
    assert run.status == JobStatus.QUEUED


# --- the run page -----------------------------------------------------------------------------


def queued_run(tenant, version, template: str = "leptonnet", **knobs) -> TrainingRun:
    config = model_config_create(
        organization=tenant.organization,
        user=tenant.user,
        name="Shelf model",
        template=template,
        dataset_version=version,
        hyperparameters={"epochs": 10} | knobs,
    )
    return training_run_start(model_config=config, user=tenant.user)


def set_run(run: TrainingRun, **fields) -> TrainingRun:
    TrainingRun.all_tenants.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    return run


def add_epochs(run: TrainingRun, count: int) -> None:
    for epoch in range(1, count + 1):
        EpochMetric.all_tenants.create(
            organization=run.organization,
            run=run,
            epoch=epoch,
            train_loss=1.0 / epoch,
            train_accuracy=0.5 + epoch / 40,
            val_loss=1.2 / epoch,
            val_accuracy=0.45 + epoch / 40,
            seconds=1.5,
        )


def run_page(client, run: TrainingRun, fragment: str = ""):
    url = reverse("training:run", kwargs={"pk": run.pk})
    return client.get(url + (f"?fragment={fragment}" if fragment else ""))


def shown(html: str, testid: str) -> str:
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, testid
    return re.sub(r"<[^>]+>", "", match.group(2)).strip()


def is_hidden(html: str, testid: str) -> bool:
    tag = re.search(rf'<[^>]*data-testid="{testid}"[^>]*>', html, re.S)
    assert tag, testid
    return bool(re.search(r"\shidden[\s>]", tag.group(0)))


def test_the_run_page_paints_the_live_values_the_api_reports(member, tenant, ready_version):
    run = queued_run(tenant, ready_version)
    run = set_run(
        run,
        status=JobStatus.RUNNING,
        progress=0.25,
        message="Epoch 3 of 10",
        epoch=3,
        total_epochs=10,
        step=30,
        total_steps=120,
        train_loss=0.41234,
        train_accuracy=0.8125,
        val_loss=0.5,
        val_accuracy=0.75,
        images_per_second=1234.4,
        eta_seconds=80,
        device="cuda",
        gpu_seconds=12.345,
        attempts=1,
        log="10:00:01 Epoch 1/10: train loss 1.0\n10:00:02 Epoch 2/10: train loss 0.5\n",
    )
    add_epochs(run, 2)
    html = run_page(member, run).content.decode()
    assert shown(html, "run-status") == "Running"
    assert shown(html, "run-message") == "Epoch 3 of 10"
    assert shown(html, "run-progress") == "25%"
    assert re.search(r'<progress class="bar" max="1" value="0.25"[^>]*data-testid="run-bar"', html)
    assert (shown(html, "run-step"), shown(html, "run-total-steps")) == ("30", "120")
    assert (shown(html, "run-epoch"), shown(html, "run-total-epochs")) == ("3", "10")
    assert shown(html, "run-loss") == "0.4123"
    assert shown(html, "run-val-loss") == "0.5000"
    assert shown(html, "run-accuracy") == "81.2%"
    assert shown(html, "run-val-accuracy") == "75%"
    assert shown(html, "run-speed") == "1,234"
    assert "Images / s" in html
    assert shown(html, "run-eta") == "1 min 20 s"
    assert shown(html, "run-device") == "cuda"
    assert shown(html, "run-gpu-seconds") == "12.3 s"
    assert is_hidden(html, "run-queue") and is_hidden(html, "run-resumed")
    assert shown(html, "run-log").splitlines() == [
        "10:00:01 Epoch 1/10: train loss 1.0",
        "10:00:02 Epoch 2/10: train loss 0.5",
    ]
    # Two epochs: two points per series on each chart.
    for chart in ("loss", "accuracy"):
        svg = re.search(rf'data-testid="curve-{chart}">.*?</svg>', html, re.S).group(0)
        assert svg.count('<circle class="point train"') == 2
        assert svg.count('<circle class="point validation"') == 2
    # Cancel: a POST form with the CSRF token, while the run can still be cancelled.
    form = re.search(
        r'<form method="post" action="([^"]+)"[^>]*data-testid="cancel-form".*?</form>', html, re.S
    )
    assert form.group(1) == reverse("training:cancel", kwargs={"pk": run.pk})
    assert "csrfmiddlewaretoken" in form.group(0)
    assert not is_hidden(html, "cancel-form")
    # The live part asks the server for its next copy every second, naming what it shows.
    live = re.search(r'<section[^>]*data-testid="run-live"[^>]*>', html).group(0)
    assert f'hx-get="/models/runs/{run.pk}/?fragment=live&amp;epochs=2&amp;log=' in live
    assert 'hx-trigger="every 1s"' in live and 'hx-swap="outerHTML"' in live


def test_a_queued_run_shows_its_place_in_the_queue(member, tenant, ready_version, outsider):
    queued_run(outsider, outsider_version(outsider))  # queued first, on the same gpu queue
    run = queued_run(tenant, ready_version)
    html = run_page(member, run).content.decode()
    assert shown(html, "run-status") == "Queued"
    assert shown(html, "run-queue") == "2nd in the gpu queue"
    assert not is_hidden(html, "run-queue")
    assert shown(html, "run-eta") == "—"
    assert "The curve starts after the first epoch." in html


def outsider_version(outsider):
    version = dataset_create(
        organization=outsider.organization, user=outsider.user, name="x", upload=zip_upload()
    )
    return dataset_version_ingest(version_id=version.pk)


def test_a_resumed_run_says_where_it_continued(member, tenant, ready_version):
    run = set_run(
        queued_run(tenant, ready_version),
        status=JobStatus.RUNNING,
        attempts=2,
        resumed_from_epoch=4,
    )
    html = run_page(member, run).content.decode()
    assert not is_hidden(html, "run-resumed")
    assert shown(html, "run-resumed") == (
        "Attempt 2 of 3: continued from epoch 4, the last checkpoint the previous worker stored."
    )
    assert shown(html, "run-attempts") == "2"


def test_a_finished_run_has_no_cancel_button_and_shows_its_error(member, tenant, ready_version):
    run = set_run(
        queued_run(tenant, ready_version),
        status=JobStatus.FAILED,
        error="The GPU ran out of memory at batch size 1024.",
    )
    html = run_page(member, run).content.decode()
    assert is_hidden(html, "cancel-form")
    assert not is_hidden(html, "run-error")
    assert shown(html, "run-error") == "The GPU ran out of memory at batch size 1024."


def test_a_market_model_reports_rows_per_second_and_no_accuracy(member, tenant, table):
    DatasetVersion.all_tenants.filter(pk=table.pk).update(confirmed_at=timezone.now())
    table.refresh_from_db()
    run = set_run(queued_run(tenant, table, "linear"), status=JobStatus.RUNNING)
    add_epochs(run, 1)
    html = run_page(member, run).content.decode()
    assert "Rows / s" in html and "Images / s" not in html
    assert 'data-testid="run-accuracy"' not in html
    assert 'data-testid="curve-loss"' in html and 'data-testid="curve-accuracy"' not in html


def test_the_curves_fragment_has_a_point_per_finished_epoch(member, tenant, ready_version):
    run = set_run(queued_run(tenant, ready_version), status=JobStatus.RUNNING, total_epochs=10)
    html = run_page(member, run, "curves").content.decode()
    assert '<div class="curves" data-epochs="0">' in html
    assert "<circle" not in html
    add_epochs(run, 3)
    html = run_page(member, run, "curves").content.decode()
    assert '<div class="curves" data-epochs="3">' in html
    assert html.count('<circle class="point train"') == 6  # loss and accuracy
    assert "<html" not in html  # a fragment, not a page


def test_another_organization_gets_404_for_the_run_and_its_fragments(
    client, tenant, outsider, ready_version
):
    run = queued_run(tenant, ready_version)
    client.force_login(outsider.user)
    for fragment in ("", "curves", "evaluation"):
        assert run_page(client, run, fragment).status_code == 404


# --- the models list --------------------------------------------------------------------------


def test_the_models_list_shows_template_dataset_status_score_and_device(
    member, tenant, ready_version, outsider
):
    version = trained_model_version(tenant, ready_version, epochs=1)
    queued = queued_run(tenant, ready_version, "resnet18")
    html = member.get(reverse("training:list")).content.decode()
    rows = re.findall(r'<tr data-testid="run-row" data-run="([^"]+)">(.*?)</tr>', html, re.S)
    assert [pk for pk, _ in rows] == [str(queued.pk), str(version.run_id)]
    cells = [
        re.sub(r"<[^>]+>|\s+", " ", c).split()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[1][1], re.S)
    ]
    text = " ".join(" ".join(c) for c in cells)
    assert "shapes model" in text and "LeptonNet-S" in text and "shapes v1" in text
    assert "Succeeded" in text and "cpu" in text
    assert percent(version.accuracy) in text
    assert f'href="/models/runs/{version.run_id}/"' in rows[1][1]
    assert "ResNet-18" in rows[0][1] and "Queued" in rows[0][1]
    # A market model's score is its R².
    with tenant_scope(tenant.organization):
        ModelVersion.objects.filter(pk=version.pk).update(
            task="tabular-regression", accuracy=0.8123
        )
    html = member.get(reverse("training:list")).content.decode()
    assert re.search(r"R²</span> 0\.812", html)


def test_the_models_list_shows_no_other_organizations_runs(client, tenant, outsider, ready_version):
    queued_run(tenant, ready_version)
    client.force_login(outsider.user)
    html = client.get(reverse("training:list")).content.decode()
    assert 'data-testid="run-row"' not in html
    assert "No models yet." in html


# --- formats of the live run page ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0 s"),
        (44.6, "45 s"),
        (60, "1 min"),
        (80, "1 min 20 s"),
        (3599.4, "59 min 59 s"),
        (3600, "1 h"),
        (3900, "1 h 5 min"),
    ],
)
def test_time_left_reads_like_a_person_would_say_it(seconds, text):
    assert eta(seconds) == text


@pytest.mark.parametrize(
    ("position", "text"),
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (22, "22nd"),
        (101, "101st"),
        (111, "111th"),
    ],
)
def test_queue_positions_are_ordinals(position, text):
    run = TrainingRun(status=JobStatus.QUEUED, queue="gpu")
    assert queue_text(run, position) == f"{text} in the gpu queue"
    run.status = JobStatus.RUNNING
    assert queue_text(run, position) == ""


def test_percentages_keep_one_decimal_at_most():
    assert [percent(v) for v in (None, 0, 0.25, 0.8125, 0.99999, 1)] == [
        "—",
        "0%",
        "25%",
        "81.2%",
        "100%",
        "100%",
    ]


def test_curves_scale_to_a_round_ceiling_and_span_every_planned_epoch():
    assert [nice_ceiling(v) for v in (0.93, 1.0, 1.7, 2.2, 37, 0.0042)] == [
        1.0,
        1.0,
        2.0,
        2.5,
        40.0,
        0.005,
    ]
    rows = [
        {
            "epoch": 1,
            "train_loss": 2.0,
            "val_loss": 1.0,
            "train_accuracy": None,
            "val_accuracy": None,
        }
    ]
    (loss,) = run_charts(rows, total_epochs=5, classification=False)
    assert loss.y_ticks[-1].label == "2"
    assert [t.label for t in loss.x_ticks] == ["1", "2", "3", "4", "5"]
    train, validation = loss.series
    assert train.points[0].x == loss.left  # epoch 1 of 5 at the left edge, room for 4 more
    assert train.points[0].y == loss.top  # 2.0 is the top of the scale
    assert validation.points[0].y == (loss.top + loss.bottom) / 2
