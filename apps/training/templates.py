"""Model templates and their knobs, as the portal offers them.

The knobs are declared once, in the ML core (``workers.ml.trainer.TrainConfig`` for image
classifiers, ``workers.ml.tabular.RegressionConfig`` for market regression); this module reads
their schema, turns what a person typed (text from a form, JSON from the API) into typed values,
and lets the ML config validate them, so the form, the API and the trainer cannot disagree.
The API publishes the catalogue at GET /api/v1/templates/.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.errors import InvalidInput
from workers.ml.tasks import IMAGE_CLASSIFICATION, TABULAR_REGRESSION

_TRUE = frozenset({"true", "on", "1", "yes"})
_FALSE = frozenset({"false", "off", "0", "no"})
GROUPS = {
    "training": _("Training"),
    "regularisation": _("Regularisation"),
    "augmentation": _("Augmentation"),
}


@dataclass(frozen=True)
class Knob:
    """One setting of a template: its type, default, allowed values and help text."""

    name: str
    label: str
    kind: str  # "int" | "float" | "bool" | "choice"
    default: Any
    help: str
    group: str = "training"
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[str, ...] = ()

    @classmethod
    def from_schema(cls, entry: dict[str, Any]) -> Knob:
        return cls(
            name=entry["name"],
            label=entry["label"],
            kind=entry["type"],
            default=entry["default"],
            help=entry["help"],
            group=entry.get("group", "training"),
            minimum=entry.get("min"),
            maximum=entry.get("max"),
            choices=tuple(entry.get("choices", ())),
        )

    @property
    def group_label(self) -> str:
        return str(GROUPS.get(self.group, self.group))

    def _range_error(self, raw: Any, kind: str | None = None) -> InvalidInput:
        kind = kind or ("a whole number" if self.kind == "int" else "a number")
        return InvalidInput(
            f"{self.name} must be {kind} between {self.minimum} and {self.maximum}; got {raw!r}.",
            field=self.name,
        )

    def clean(self, raw: Any) -> Any:
        """The typed value of ``raw`` (text or JSON); None or blank text means the default.

        Raises:
            InvalidInput: naming the knob and what it allows.
        """
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return self.default
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
                return raw.strip().lower() in _TRUE
            raise InvalidInput(f"{self.name} must be true or false; got {raw!r}.", field=self.name)
        if self.kind == "choice":
            value = raw.strip() if isinstance(raw, str) else raw
            if value not in self.choices:
                allowed = ", ".join(self.choices)
                raise InvalidInput(
                    f"{self.name} must be one of: {allowed}; got {raw!r}.", field=self.name
                )
            return value
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise self._range_error(raw)
        try:
            if self.kind == "int":
                if isinstance(raw, float):
                    if not raw.is_integer():
                        raise self._range_error(raw, "a whole number")
                    value: int | float = int(raw)
                else:
                    value = int(str(raw).strip())
            else:
                value = float(raw)
        except (ValueError, OverflowError):
            raise self._range_error(raw)
        if isinstance(value, float) and not math.isfinite(value):
            raise self._range_error(raw)
        if not self.minimum <= value <= self.maximum:  # type: ignore[operator]
            raise self._range_error(raw)
        return value

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "label": gettext(self.label),
            "kind": self.kind,
            "default": self.default,
            "group": self.group,
            "help": gettext(self.help),
        }
        if self.kind in ("int", "float"):
            data |= {"minimum": self.minimum, "maximum": self.maximum}
        if self.kind == "choice":
            data["choices"] = list(self.choices)
        return data


@dataclass(frozen=True)
class Template:
    """A model a customer can configure: what it learns from and where it trains."""

    key: str
    name: str
    description: str
    task: str  # IMAGE_CLASSIFICATION | TABULAR_REGRESSION
    #: the Celery queue its runs go to
    queue: str = "gpu"
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def knobs(self) -> tuple[Knob, ...]:
        return tuple(Knob.from_schema(entry) for entry in self._config_class().schema(self.key))

    @property
    def dataset_kind(self) -> str:
        return "tabular" if self.task == TABULAR_REGRESSION else "image"

    def _config_class(self) -> Any:
        if self.task == TABULAR_REGRESSION:
            from workers.ml.tabular import RegressionConfig

            return RegressionConfig
        from workers.ml.trainer import TrainConfig

        return TrainConfig

    def config(self, values: dict[str, Any], **fixed: Any) -> Any:
        """The ML core's config for already cleaned ``values`` (TrainConfig/RegressionConfig);
        ``fixed`` sets fields that are no knobs (``pretrained_path``)."""
        return self._config_class()(template=self.key, **values, **fixed)

    def clean(self, values: dict[str, Any] | None) -> dict[str, Any]:
        """Every knob's typed, validated value: given ones checked, missing ones defaulted.

        Unknown names are refused, so a typo does not pass silently; so are combinations the
        trainer refuses (a random shift as large as the image, say).

        Raises:
            InvalidInput: naming the field and the allowed values.
        """
        from workers.ml.knobs import ConfigError

        values = dict(values or {})
        known = [knob.name for knob in self.knobs]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InvalidInput(
                f"Unknown setting {unknown[0]!r} for template {self.key}; "
                f"the settings are: {', '.join(known)}.",
                field=unknown[0],
            )
        cleaned = {knob.name: knob.clean(values.get(knob.name)) for knob in self.knobs}
        try:
            self.config(cleaned)
        except ConfigError as exc:
            raise InvalidInput(f"{exc}.", field=exc.field)
        return cleaned

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": gettext(self.name),
            "description": gettext(self.description),
            "task": self.task,
            "dataset_kind": self.dataset_kind,
            "queue": self.queue,
            **self.extra,
            "knobs": [knob.as_dict() for knob in self.knobs],
        }


def _catalogue() -> dict[str, Template]:
    from workers.ml.architectures import IMAGE_TEMPLATES
    from workers.ml.tabular import REGRESSION_TEMPLATES

    templates: dict[str, Template] = {}
    for key, spec in IMAGE_TEMPLATES.items():
        if key == "leptonnet-s":
            continue  # "leptonnet" is LeptonNet-S; one name in the catalogue is enough
        info = spec.as_dict()
        templates[key] = Template(
            key=key,
            name=spec.title,
            description=spec.description,
            task=IMAGE_CLASSIFICATION,
            queue="gpu",
            extra={
                "min_input_size": info["min_input_size"],
                "max_input_size": info["max_input_size"],
                "pretrained_available": info["pretrained_available"],
            },
        )
    for key, spec in REGRESSION_TEMPLATES.items():
        # Tables are small: a GPU would sit idle, so market models train on the cpu queue.
        templates[key] = Template(
            key=key,
            name=spec.title,
            description=spec.description,
            task=TABULAR_REGRESSION,
            queue="cpu",
        )
    return templates


TEMPLATES: dict[str, Template] = _catalogue()


def template_get(key: str) -> Template:
    """The template called ``key``; an unknown one is refused naming the choices."""
    try:
        return TEMPLATES[key]
    except KeyError:
        raise InvalidInput(
            f"Unknown template {key!r}; choose one of: {', '.join(TEMPLATES)}.",
            field="template",
        )
