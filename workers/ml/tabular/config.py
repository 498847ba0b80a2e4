"""The knobs of a regression run, declared once: the portal builds its form and checks values
from them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from workers.ml.knobs import ConfigError, check_knobs, knob, knob_schema
from workers.ml.optimization import OPTIMIZERS, SCHEDULES
from workers.ml.tabular.models import REGRESSION_TEMPLATES


@dataclass(frozen=True)
class RegressionConfig:
    """Hyper-parameters of one tabular-regression run; same conventions as ``TrainConfig``.

    Invalid values raise :class:`workers.ml.knobs.ConfigError` naming the field and range;
    :meth:`schema` publishes the knobs.
    """

    template: str = "linear"
    epochs: int = knob(
        100, type="int", minimum=1, maximum=1000, label="Epochs",
        help="Passes over the training rows. Tables are small, so a hundred passes take "
        "seconds.",
    )  # fmt: skip
    batch_size: int = knob(
        32, type="int", minimum=1, maximum=4096, label="Batch size",
        help="Rows per training step.",
    )  # fmt: skip
    learning_rate: float = knob(
        1e-2, type="float", minimum=1e-5, maximum=1.0, label="Learning rate",
        help="Peak step size. About 0.01 suits AdamW; SGD usually wants about 0.05.",
    )  # fmt: skip
    weight_decay: float = knob(
        1e-4, type="float", minimum=0.0, maximum=1.0, label="Weight decay",
        group="regularisation",
        help="Pulls weights towards zero against overfitting (ridge regression for the linear "
        "model); 0 turns it off.",
    )  # fmt: skip
    seed: int = knob(
        0, type="int", minimum=0, maximum=2**31 - 1, label="Seed",
        help="Same seed and data give the same model on the CPU.",
    )  # fmt: skip
    optimizer: str = knob(
        "adamw", type="choice", choices=OPTIMIZERS, label="Optimizer",
        help="AdamW adapts the step per weight; SGD uses momentum 0.9 (Nesterov).",
    )  # fmt: skip
    schedule: str = knob(
        "onecycle", type="choice", choices=SCHEDULES, label="Learning-rate schedule",
        help="One-cycle warms up, then anneals to zero; cosine starts at the peak and "
        "anneals along a half cosine.",
    )  # fmt: skip
    hidden_size: int = knob(
        64, type="int", minimum=8, maximum=1024, label="Hidden units",
        help="Units in each of the MLP's two hidden layers.",
    )  # fmt: skip
    early_stopping_patience: int = knob(
        0, type="int", minimum=0, maximum=1000, label="Early stopping patience",
        group="regularisation",
        help="Stop when the validation loss has not improved for this many epochs and keep the "
        "best epoch's weights; 0 turns it off. Needs a validation split.",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.template not in REGRESSION_TEMPLATES:
            allowed = ", ".join(sorted(REGRESSION_TEMPLATES))
            raise ConfigError(
                "template", f"unknown regression template {self.template!r}; allowed: {allowed}"
            )
        check_knobs(self)

    @classmethod
    def schema(cls, template: str | None = None) -> list[dict[str, Any]]:
        """The knobs as JSON-ready dicts (format as ``TrainConfig.schema``); with ``template``,
        knobs it ignores are left out."""
        if template is None:
            return knob_schema(cls)
        spec = REGRESSION_TEMPLATES.get(template)
        if spec is None:
            raise ValueError(f"unknown regression template {template!r}")
        return knob_schema(
            cls, exclude=frozenset() if spec.uses_hidden_size else frozenset({"hidden_size"})
        )

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain data."""
        return dataclasses.asdict(self)
