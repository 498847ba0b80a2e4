"""Template knobs: defaults filled in, ranges, types and choices enforced, unknown names refused.

The knobs come from the ML core's configs; these tests hold the portal's reading of what a
person typed (form text or API JSON) to the same ranges the trainer enforces.
"""

from __future__ import annotations

import math

import pytest

from apps.core.errors import InvalidInput
from apps.training.templates import TEMPLATES, Knob, template_get

LEPTONNET = TEMPLATES["leptonnet"]
KNOBS = {knob.name: knob for knob in LEPTONNET.knobs if knob.kind in ("int", "float")}


def below(knob: Knob) -> int | float:
    if knob.kind == "int":
        return knob.minimum - 1
    return knob.minimum / 10 if knob.minimum > 0 else -0.5


def above(knob: Knob) -> int | float:
    return knob.maximum + 1 if knob.kind == "int" else knob.maximum * 2


def refusal(values: dict) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        LEPTONNET.clean(values)
    return caught.value


def test_it_fills_in_every_default():
    assert LEPTONNET.clean({}) == {knob.name: knob.default for knob in LEPTONNET.knobs}
    assert LEPTONNET.clean(None) == LEPTONNET.clean({})


def test_every_template_offers_the_knobs_the_issue_asks_for():
    image = {"epochs", "batch_size", "optimizer", "learning_rate", "schedule", "weight_decay"}
    image |= {"label_smoothing", "input_size", "flip", "crop_padding", "scale_min"}
    image |= {"brightness", "contrast", "saturation", "greyscale_probability"}
    image |= {"class_weights", "early_stopping_patience", "seed"}
    assert {"leptonnet", "leptonnet-m", "leptonnet-l", "resnet18", "mobilenet_v3_small"} <= set(
        TEMPLATES
    )
    for key, template in TEMPLATES.items():
        names = {knob.name for knob in template.knobs}
        if template.task == "image-classification":
            assert image <= names, key
        else:
            assert {"epochs", "learning_rate", "optimizer", "seed"} <= names, key
        for knob in template.knobs:
            assert str(knob.help) and str(knob.label), (key, knob.name)
            assert knob.clean(None) == knob.default
        template.clean({})  # the defaults themselves are valid


@pytest.mark.parametrize("raw, expected", [("on", True), ("false", False), (True, True)])
def test_it_reads_true_and_false_from_a_form_or_json(raw, expected):
    assert LEPTONNET.clean({"flip": raw})["flip"] is expected


def test_it_refuses_a_choice_outside_the_list_naming_the_choices():
    error = refusal({"optimizer": "adam-ish"})
    assert error.field == "optimizer"
    assert "adamw" in error.message and "sgd" in error.message and "'adam-ish'" in error.message
    assert LEPTONNET.clean({"optimizer": "sgd", "schedule": "cosine"})["schedule"] == "cosine"


def test_it_refuses_combinations_the_trainer_refuses():
    error = refusal({"input_size": 32, "crop_padding": 32})
    assert error.field == "crop_padding"
    assert "31" in error.message


def test_each_template_has_its_own_input_size_range():
    resnet = {knob.name: knob for knob in TEMPLATES["resnet18"].knobs}
    assert resnet["input_size"].default == 96
    assert "pretrained" in resnet and "pretrained" not in {k.name for k in LEPTONNET.knobs}
    assert "hidden_size" in {k.name for k in TEMPLATES["mlp"].knobs}
    assert "hidden_size" not in {k.name for k in TEMPLATES["linear"].knobs}


def test_it_keeps_given_values_and_defaults_the_rest():
    cleaned = LEPTONNET.clean({"epochs": 7, "learning_rate": "0.01", "batch_size": " 64 "})
    assert cleaned["epochs"] == 7
    assert cleaned["learning_rate"] == 0.01
    assert cleaned["batch_size"] == 64
    for name in set(KNOBS) - {"epochs", "learning_rate", "batch_size"}:
        assert cleaned[name] == KNOBS[name].default


def test_it_treats_blank_as_the_default():
    assert LEPTONNET.clean({"epochs": "", "seed": None}) == LEPTONNET.clean({})


def test_it_gives_ints_for_int_knobs_and_floats_for_float_knobs():
    cleaned = LEPTONNET.clean({"epochs": 4.0, "learning_rate": 1})
    assert cleaned["epochs"] == 4 and isinstance(cleaned["epochs"], int)
    assert isinstance(cleaned["learning_rate"], float)


@pytest.mark.parametrize("name", KNOBS)
def test_it_accepts_both_ends_of_each_range(name):
    knob = KNOBS[name]
    # The random shift must stay below the image size: give it the largest image.
    room = {"input_size": KNOBS["input_size"].maximum} if name == "crop_padding" else {}
    assert LEPTONNET.clean({name: knob.minimum} | room)[name] == knob.minimum
    assert LEPTONNET.clean({name: knob.maximum} | room)[name] == knob.maximum


@pytest.mark.parametrize("side", [below, above])
@pytest.mark.parametrize("name", KNOBS)
def test_it_refuses_values_outside_the_range_naming_the_field_and_range(name, side):
    knob = KNOBS[name]
    error = refusal({name: side(knob)})
    assert error.field == name
    assert error.message.startswith(name)
    assert f"between {knob.minimum} and {knob.maximum}" in error.message
    assert repr(side(knob)) in error.message


WRONG_TYPES = {
    "text": "abc",
    "true": True,
    "false": False,
    "nan": math.nan,
    "nan text": "nan",
    "infinity": math.inf,
    "list": [1],
    "dict": {"value": 1},
    # float() of an int this big overflows instead of failing with ValueError
    "huge": 10**400,
}


@pytest.mark.parametrize("raw", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
@pytest.mark.parametrize("name", KNOBS)
def test_it_refuses_wrong_types(name, raw):
    knob = KNOBS[name]
    error = refusal({name: raw})
    assert error.field == name
    assert f"{knob.minimum} and {knob.maximum}" in error.message
    assert repr(raw) in error.message


@pytest.mark.parametrize("name", [k.name for k in KNOBS.values() if k.kind == "int"])
@pytest.mark.parametrize("raw", [1.5, "2.5", "10.0", "1e3"])
def test_it_refuses_fractions_and_float_text_for_whole_number_knobs(name, raw):
    error = refusal({name: raw})
    assert error.field == name
    assert "whole number" in error.message


def test_it_refuses_an_unknown_knob_naming_it_and_the_known_ones():
    error = refusal({"epochs": 3, "learnin_rate": 0.1})
    assert error.field == "learnin_rate"
    assert "'learnin_rate'" in error.message
    for name in (knob.name for knob in LEPTONNET.knobs):
        assert name in error.message


def test_it_refuses_an_unknown_template():
    with pytest.raises(InvalidInput) as caught:
        template_get("gpt-17")
    assert caught.value.field == "template"
    assert "'gpt-17'" in caught.value.message
    assert all(key in caught.value.message for key in TEMPLATES)


def test_the_api_publishes_templates_with_their_knobs(api, outsider):
    r = api.get("/api/v1/templates/")
    assert r.status_code == 200
    published = {template["key"]: template for template in r.json()}
    assert set(published) == set(TEMPLATES)
    for key, template in TEMPLATES.items():
        body = published[key]
        assert body["name"] == str(template.name)
        assert body["description"]
        assert body["task"] == template.task
        assert body["queue"] == ("cpu" if template.task == "tabular-regression" else "gpu")
        knobs = {knob["name"]: knob for knob in body["knobs"]}
        assert list(knobs) == [knob.name for knob in template.knobs]
        for knob in template.knobs:
            data = knobs[knob.name]
            assert data["kind"] == knob.kind
            assert data["default"] == knob.default
            if knob.kind in ("int", "float"):
                assert data["minimum"] == knob.minimum
                assert data["maximum"] == knob.maximum
                assert data["minimum"] <= data["default"] <= data["maximum"]
            if knob.kind == "choice":
                assert data["default"] in data["choices"]
            assert data["help"] == str(knob.help) and data["help"]
            assert data["label"] == str(knob.label)


def test_the_templates_need_credentials(client, db):
    assert client.get("/api/v1/templates/").status_code == 401
