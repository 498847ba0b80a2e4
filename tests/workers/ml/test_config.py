"""TrainConfig knobs: defaults, validation messages that name the field and range, the schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workers.ml.architectures import IMAGE_TEMPLATES
from workers.ml.config import TrainConfig
from workers.ml.knobs import ConfigError


def test_defaults_are_the_original_ones() -> None:
    config = TrainConfig()
    assert (config.template, config.epochs, config.batch_size) == ("leptonnet", 10, 32)
    assert (config.learning_rate, config.input_size, config.weight_decay) == (3e-3, 32, 5e-4)
    assert config.seed == 0
    assert (config.optimizer, config.schedule, config.flip) == ("adamw", "onecycle", True)
    assert config.early_stopping_patience == 0
    assert config.class_weights == "none"


def test_input_size_defaults_to_the_templates() -> None:
    for name, spec in IMAGE_TEMPLATES.items():
        assert TrainConfig(template=name).input_size == spec.default_input_size
    assert TrainConfig(template="resnet18", input_size=48).input_size == 48


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", 0, "epochs must be a whole number between 1 and 200; got 0"),
        ("epochs", 201, "between 1 and 200"),
        ("epochs", 2.0, "whole number"),
        ("epochs", True, "whole number"),
        ("batch_size", 0, "batch_size must be a whole number between 1 and 1024"),
        ("learning_rate", 0.0, "learning_rate must be a number between 1e-05 and 1.0"),
        ("learning_rate", float("nan"), "learning_rate"),
        ("learning_rate", "0.1", "learning_rate"),
        ("input_size", 8, "input_size must be a whole number between 32 and 224; got 8"),
        ("input_size", 225, "between 32 and 224"),
        ("weight_decay", -0.1, "weight_decay"),
        ("seed", -1, "seed must be a whole number between 0 and 2147483647"),
        ("optimizer", "adam", "optimizer must be one of 'adamw', 'sgd'; got 'adam'"),
        ("schedule", "step", "schedule must be one of 'onecycle', 'cosine'"),
        ("label_smoothing", 0.6, "label_smoothing must be a number between 0.0 and 0.5"),
        ("flip", 1, "flip must be true or false; got 1"),
        ("crop_padding", 65, "crop_padding must be a whole number between 0 and 64"),
        ("crop_padding", 32, "crop_padding must be between 0 and 31 (below input_size)"),
        ("scale_min", 0.05, "scale_min must be a number between 0.08 and 1.0"),
        ("brightness", 1.5, "brightness"),
        ("contrast", -0.5, "contrast"),
        ("saturation", 2, "saturation"),
        ("greyscale_probability", 1.1, "greyscale_probability"),
        ("class_weights", "auto", "class_weights must be one of 'none', 'balanced'"),
        ("early_stopping_patience", -1, "early_stopping_patience"),
        ("pretrained", "yes", "pretrained must be true or false"),
        ("template", "x", "unknown model template 'x'; allowed: "),
        ("pretrained_path", "", "pretrained_path"),
    ],
)
def test_invalid_values_name_the_field_and_range(field: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**{field: value})
    assert caught.value.field == field
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_template_narrows_the_input_range() -> None:
    # Every template accepts 32..224 today; the check follows the template's declaration.
    assert TrainConfig(template="leptonnet-l", input_size=224).input_size == 224
    with pytest.raises(ConfigError, match="between 32 and 224"):
        TrainConfig(template="mobilenet_v3_small", input_size=16)


def test_schema_describes_every_knob() -> None:
    schema = TrainConfig.schema()
    json.dumps(schema)  # publishable as it is
    names = [entry["name"] for entry in schema]
    assert "template" not in names and "pretrained_path" not in names
    assert names[:7] == [
        "epochs",
        "batch_size",
        "learning_rate",
        "input_size",
        "weight_decay",
        "seed",
        "optimizer",
    ]
    by_name = {entry["name"]: entry for entry in schema}
    assert by_name["epochs"] | {"help": ""} == {
        "name": "epochs",
        "type": "int",
        "default": 10,
        "min": 1,
        "max": 200,
        "label": "Epochs",
        "help": "",
        "group": "training",
    }
    assert by_name["optimizer"]["choices"] == ["adamw", "sgd"]
    assert by_name["flip"]["type"] == "bool" and by_name["flip"]["group"] == "augmentation"
    assert by_name["input_size"]["default"] == 32
    assert all(entry["help"] and entry["label"] for entry in schema)
    # Every default in the schema is accepted, and every bound is accepted too.
    TrainConfig(**{e["name"]: e["default"] for e in schema})
    for entry in schema:
        for bound in ("min", "max"):
            if bound in entry and entry["name"] != "crop_padding":
                TrainConfig(**{entry["name"]: entry[bound]})


def test_schema_per_template() -> None:
    resnet = {entry["name"]: entry for entry in TrainConfig.schema("resnet18")}
    assert resnet["input_size"]["default"] == IMAGE_TEMPLATES["resnet18"].default_input_size
    assert "pretrained" in resnet
    lepton = {entry["name"]: entry for entry in TrainConfig.schema("leptonnet-m")}
    assert lepton["input_size"]["default"] == 64
    assert "pretrained" not in lepton  # LeptonNet has no ImageNet weights to start from
    with pytest.raises(ValueError, match="unknown model template"):
        TrainConfig.schema("nope")
