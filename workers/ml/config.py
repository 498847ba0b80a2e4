"""The knobs of an image-classification run (:class:`TrainConfig`), declared once: the portal
builds its form and validates requests from :meth:`TrainConfig.schema`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from workers.ml.architectures import IMAGE_TEMPLATES, image_template
from workers.ml.augment import Augmentation
from workers.ml.knobs import ConfigError, check_knobs, knob, knob_schema
from workers.ml.optimization import OPTIMIZERS, SCHEDULES

__all__ = ["CLASS_WEIGHTS", "MAX_INPUT_SIZE", "MIN_INPUT_SIZE", "TrainConfig"]

# The widest input range any template accepts; each template narrows it (ImageTemplate).
MIN_INPUT_SIZE = min(spec.min_input_size for spec in IMAGE_TEMPLATES.values())
MAX_INPUT_SIZE = max(spec.max_input_size for spec in IMAGE_TEMPLATES.values())
CLASS_WEIGHTS = ("none", "balanced")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one image-classification run.

    Every field but ``template`` and ``pretrained_path`` is a knob the customer may set:
    :meth:`schema` describes them (type, default, range or choices, help). Invalid values raise
    :class:`workers.ml.knobs.ConfigError` (a ValueError with ``.field``) on creation, with a
    message naming the field and the allowed range. ``input_size`` left as None becomes the
    template's default input size (32 for LeptonNet-S).

    ``pretrained_path`` (not a knob: set by the portal) is a local file with weights to start
    from: a torchvision state dict or a Lepton model bundle of the same architecture. Without
    it, and with ``pretrained`` on, a torchvision template starts from its ImageNet weights if
    they lie in the local torch hub cache. Nothing is ever downloaded.
    """

    template: str = "leptonnet"
    epochs: int = knob(
        10, type="int", minimum=1, maximum=200, label="Epochs",
        help="Passes over the training images. More can help until validation loss stops "
        "improving.",
    )  # fmt: skip
    batch_size: int = knob(
        32, type="int", minimum=1, maximum=1024, label="Batch size",
        help="Images per training step. Larger is faster on a GPU; smaller can generalise "
        "better.",
    )  # fmt: skip
    learning_rate: float = knob(
        3e-3, type="float", minimum=1e-5, maximum=1.0, label="Learning rate",
        help="Peak step size. About 0.003 suits AdamW; SGD usually wants about 0.1.",
    )  # fmt: skip
    input_size: int | None = knob(
        None, type="int", minimum=MIN_INPUT_SIZE, maximum=MAX_INPUT_SIZE,
        label="Input size (px)",
        help="Images are resized to this square size. Larger sees more detail and trains "
        "slower.",
    )  # fmt: skip
    weight_decay: float = knob(
        5e-4, type="float", minimum=0.0, maximum=1.0, label="Weight decay",
        group="regularisation",
        help="Pulls weights towards zero against overfitting; 0 turns it off.",
    )  # fmt: skip
    seed: int = knob(
        0, type="int", minimum=0, maximum=2**31 - 1, label="Seed",
        help="Same seed and data give the same model on the CPU.",
    )  # fmt: skip
    optimizer: str = knob(
        "adamw", type="choice", choices=OPTIMIZERS, label="Optimizer",
        help="AdamW adapts the step per weight and is forgiving; SGD (momentum 0.9, Nesterov) "
        "can generalise slightly better with a tuned learning rate.",
    )  # fmt: skip
    schedule: str = knob(
        "onecycle", type="choice", choices=SCHEDULES, label="Learning-rate schedule",
        help="One-cycle warms up, then anneals to zero; cosine starts at the peak and "
        "anneals along a half cosine.",
    )  # fmt: skip
    label_smoothing: float = knob(
        0.0, type="float", minimum=0.0, maximum=0.5, label="Label smoothing",
        group="regularisation",
        help="Share of each target spread over the other classes; 0.1 often makes models "
        "less overconfident.",
    )  # fmt: skip
    flip: bool = knob(
        True, type="bool", label="Mirror images", group="augmentation",
        help="Mirror half the training images left-right. Turn off when direction matters "
        "(text, arrows).",
    )  # fmt: skip
    crop_padding: int = knob(
        0, type="int", minimum=0, maximum=64, label="Random shift (px)", group="augmentation",
        help="Shift training images by up to this many pixels (a random crop of the padded "
        "image); 0 turns it off. 4 suits 32 px images.",
    )  # fmt: skip
    scale_min: float = knob(
        1.0, type="float", minimum=0.08, maximum=1.0, label="Random zoom: smallest area",
        group="augmentation",
        help="Train on random crops covering this share of the image or more, resized back; "
        "1 turns it off.",
    )  # fmt: skip
    brightness: float = knob(
        0.0, type="float", minimum=0.0, maximum=1.0, label="Brightness jitter",
        group="augmentation",
        help="Vary brightness by up to this share either way; 0 turns it off.",
    )  # fmt: skip
    contrast: float = knob(
        0.0, type="float", minimum=0.0, maximum=1.0, label="Contrast jitter",
        group="augmentation",
        help="Vary contrast by up to this share either way; 0 turns it off.",
    )  # fmt: skip
    saturation: float = knob(
        0.0, type="float", minimum=0.0, maximum=1.0, label="Saturation jitter",
        group="augmentation",
        help="Vary colour saturation by up to this share either way; 0 turns it off.",
    )  # fmt: skip
    greyscale_probability: float = knob(
        0.0, type="float", minimum=0.0, maximum=1.0, label="Greyscale share",
        group="augmentation",
        help="Share of training images shown without colour; 0 turns it off.",
    )  # fmt: skip
    class_weights: str = knob(
        "none", type="choice", choices=CLASS_WEIGHTS, label="Class weights",
        group="regularisation",
        help="'balanced' weights each class by the inverse of its frequency, so rare classes "
        "count as much as common ones.",
    )  # fmt: skip
    early_stopping_patience: int = knob(
        0, type="int", minimum=0, maximum=100, label="Early stopping patience",
        group="regularisation",
        help="Stop when the validation loss has not improved for this many epochs and keep the "
        "best epoch's weights; 0 turns it off. Needs a validation split.",
    )  # fmt: skip
    pretrained: bool = knob(
        True, type="bool", label="Start from pretrained weights",
        help="Start from ImageNet weights when the worker has them installed (ResNet-18, "
        "MobileNetV3-small).",
    )  # fmt: skip
    pretrained_path: str | None = None

    # Knobs that only some templates use.
    _PRETRAINED_ONLY: ClassVar[frozenset[str]] = frozenset({"pretrained"})

    def __post_init__(self) -> None:
        if self.template not in IMAGE_TEMPLATES:
            allowed = ", ".join(sorted(IMAGE_TEMPLATES))
            raise ConfigError(
                "template", f"unknown model template {self.template!r}; allowed: {allowed}"
            )
        spec = image_template(self.template)
        if self.input_size is None:
            object.__setattr__(self, "input_size", spec.default_input_size)
        if self.pretrained_path is not None:
            if not isinstance(self.pretrained_path, str | Path) or not str(self.pretrained_path):
                raise ConfigError("pretrained_path", "pretrained_path must be a file path")
            object.__setattr__(self, "pretrained_path", str(self.pretrained_path))
        check_knobs(self, _template_limits(self.template))
        size = int(self.input_size)  # type: ignore[arg-type]
        if self.crop_padding >= size:
            raise ConfigError(
                "crop_padding",
                f"crop_padding must be between 0 and {size - 1} (below input_size); "
                f"got {self.crop_padding}",
            )

    @classmethod
    def schema(cls, template: str | None = None) -> list[dict[str, Any]]:
        """The knobs as JSON-ready dicts, in form order.

        Each has "name", "type" ("int" | "float" | "bool" | "choice"), "default", "label",
        "help" and "group" ("training" | "regularisation" | "augmentation"); int and float knobs
        have inclusive "min" and "max", choice knobs "choices". With ``template``, the
        input-size range and default are that template's and knobs it ignores are left out.
        Without, "input_size" spans every template's range with default 32.
        """
        if template is None:
            return knob_schema(cls, {"input_size": {"default": 32}})
        spec = image_template(template)
        limits = _template_limits(template)["input_size"]
        overrides = {
            "input_size": {
                "default": spec.default_input_size,
                "min": limits["minimum"],
                "max": limits["maximum"],
            }
        }
        exclude = frozenset() if spec.pretrained_file else cls._PRETRAINED_ONLY
        return knob_schema(cls, overrides, exclude)

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain data (stored in the model bundle and in checkpoints)."""
        return dataclasses.asdict(self)

    @property
    def augmentation(self) -> Augmentation:
        """The augmentation these knobs ask for."""
        return Augmentation(
            flip=self.flip,
            crop_padding=self.crop_padding,
            scale_min=self.scale_min,
            brightness=self.brightness,
            contrast=self.contrast,
            saturation=self.saturation,
            greyscale_probability=self.greyscale_probability,
        )


def _template_limits(template: str) -> dict[str, dict[str, Any]]:
    spec = image_template(template)
    return {"input_size": {"minimum": spec.min_input_size, "maximum": spec.max_input_size}}
