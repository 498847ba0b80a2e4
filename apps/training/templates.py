"""Model templates and their knobs: validated values with defaults and help for each.

The API publishes these (GET /api/v1/templates/) and the configuration form is built from them,
so a knob added here appears everywhere with its validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from apps.core.errors import InvalidInput


@dataclass(frozen=True)
class Knob:
    name: str
    label: Any
    kind: str  # "int" | "float"
    default: int | float
    minimum: int | float
    maximum: int | float
    help: Any

    def clean(self, raw: Any) -> int | float:
        if raw is None or raw == "":
            return self.default
        try:
            if self.kind == "int":
                if isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
                value: int | float = (
                    int(str(raw).strip()) if not isinstance(raw, float) else int(raw)
                )
            else:
                value = float(raw)
        except (TypeError, ValueError, OverflowError):
            kind = "a whole number" if self.kind == "int" else "a number"
            raise InvalidInput(
                f"{self.name} must be {kind} between {self.minimum} and {self.maximum}; "
                f"got {raw!r}.",
                field=self.name,
            )
        if isinstance(raw, bool) or value != value or not self.minimum <= value <= self.maximum:
            raise InvalidInput(
                f"{self.name} must be between {self.minimum} and {self.maximum}; got {raw!r}.",
                field=self.name,
            )
        return value

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["label"] = str(self.label)
        data["help"] = str(self.help)
        return data


@dataclass(frozen=True)
class Template:
    key: str
    name: Any
    description: Any
    task: str  # "image-classification"
    knobs: tuple[Knob, ...] = field(default_factory=tuple)

    def clean(self, values: dict[str, Any] | None) -> dict[str, int | float]:
        """Validate knob values; unknown names are refused so typos do not pass silently."""
        values = dict(values or {})
        known = {knob.name for knob in self.knobs}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInput(
                f"Unknown setting {unknown[0]!r} for template {self.key}; "
                f"the settings are: {', '.join(sorted(known))}.",
                field=unknown[0],
            )
        return {knob.name: knob.clean(values.get(knob.name)) for knob in self.knobs}

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": str(self.name),
            "description": str(self.description),
            "task": self.task,
            "knobs": [knob.as_dict() for knob in self.knobs],
        }


_IMAGE_KNOBS = (
    Knob(
        "epochs",
        _("Epochs"),
        "int",
        10,
        1,
        200,
        _(
            "Passes over the training images. More can help until validation accuracy stops "
            "improving."
        ),
    ),
    Knob(
        "batch_size",
        _("Batch size"),
        "int",
        32,
        1,
        1024,
        _("Images per training step. Larger is faster on a GPU; smaller can generalise better."),
    ),
    Knob(
        "learning_rate",
        _("Learning rate"),
        "float",
        0.003,
        0.00001,
        1.0,
        _("Peak step size of the optimizer (AdamW, one-cycle schedule)."),
    ),
    Knob(
        "input_size",
        _("Input size (px)"),
        "int",
        32,
        32,
        224,
        _("Images are resized to this square size. Larger sees more detail and trains slower."),
    ),
    Knob(
        "seed",
        _("Seed"),
        "int",
        0,
        0,
        2**31 - 1,
        _("Same seed and data give the same model on the CPU."),
    ),
)

TEMPLATES: dict[str, Template] = {
    "leptonnet": Template(
        key="leptonnet",
        name=_("LeptonNet"),
        description=_(
            "The house image classifier: small and fast, trains in seconds on small datasets."
        ),
        task="image-classification",
        knobs=_IMAGE_KNOBS,
    ),
}


def template_get(key: str) -> Template:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise InvalidInput(
            f"Unknown template {key!r}; choose one of: {', '.join(sorted(TEMPLATES))}.",
            field="template",
        )
