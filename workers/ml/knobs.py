"""Validated hyper-parameters ("knobs"): one declaration gives default, check and schema.

A config dataclass declares each knob with :func:`knob`; its ``__post_init__`` calls
:func:`check_knobs`, and its ``schema()`` calls :func:`knob_schema`. The portal publishes that
schema and builds its form from it, so the values a customer may enter and the values the
trainer accepts cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ConfigError", "KnobSpec", "check_knobs", "knob", "knob_schema"]

KNOB_TYPES = ("int", "float", "bool", "choice")


class ConfigError(ValueError):
    """A config value is out of range or of the wrong type.

    ``field`` names the offending knob; the message names it too, says what is allowed and
    repeats the value, so it can be shown to the customer as it is.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class KnobSpec:
    """What a knob accepts. ``minimum``/``maximum`` are inclusive (int and float knobs);
    ``choices`` lists the allowed strings of a "choice" knob."""

    type: str
    label: str
    help: str
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[str, ...] = ()
    group: str = "training"


def knob(
    default: Any,
    *,
    type: str,
    label: str,
    help: str,
    minimum: int | float | None = None,
    maximum: int | float | None = None,
    choices: tuple[str, ...] = (),
    group: str = "training",
) -> Any:
    """A dataclass field with ``default`` whose metadata describes the knob."""
    if type not in KNOB_TYPES:
        raise ValueError(f"unknown knob type {type!r}")
    spec = KnobSpec(type, label, help, minimum, maximum, tuple(choices), group)
    return dataclasses.field(default=default, metadata={"knob": spec})


def knob_specs(cls: type) -> list[tuple[str, KnobSpec, Any]]:
    """``(name, spec, default)`` of every knob field of dataclass ``cls``, in field order."""
    return [
        (f.name, f.metadata["knob"], f.default)
        for f in dataclasses.fields(cls)
        if "knob" in f.metadata
    ]


def check_knobs(instance: Any, overrides: dict[str, dict[str, Any]] | None = None) -> None:
    """Check every knob of dataclass ``instance``; raise :class:`ConfigError` for the first bad one.

    ``overrides`` ({name: {"minimum": .., "maximum": ..}}) narrows a range for this instance,
    e.g. the input sizes a particular template accepts.
    """
    for name, spec, _default in knob_specs(type(instance)):
        limits = (overrides or {}).get(name, {})
        _check(name, getattr(instance, name), spec, **limits)


def knob_schema(
    cls: type,
    overrides: dict[str, dict[str, Any]] | None = None,
    exclude: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The knobs of ``cls`` as JSON-ready dicts.

    Each dict has "name", "type" ("int" | "float" | "bool" | "choice"), "default", "label",
    "help" and "group"; int and float knobs add "min" and "max" (inclusive), choice knobs add
    "choices". ``overrides`` replaces "default", "min" or "max" per knob.
    """
    schema: list[dict[str, Any]] = []
    for name, spec, default in knob_specs(cls):
        if name in exclude:
            continue
        entry: dict[str, Any] = {"name": name, "type": spec.type, "default": default}
        if spec.type in ("int", "float"):
            entry["min"], entry["max"] = spec.minimum, spec.maximum
        if spec.type == "choice":
            entry["choices"] = list(spec.choices)
        entry |= {"label": spec.label, "help": spec.help, "group": spec.group}
        entry |= (overrides or {}).get(name, {})
        schema.append(entry)
    return schema


def _check(
    name: str,
    value: Any,
    spec: KnobSpec,
    *,
    minimum: int | float | None = None,
    maximum: int | float | None = None,
) -> None:
    low = spec.minimum if minimum is None else minimum
    high = spec.maximum if maximum is None else maximum
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise ConfigError(name, f"{name} must be true or false; got {value!r}")
        return
    if spec.type == "choice":
        if value not in spec.choices:
            allowed = ", ".join(repr(c) for c in spec.choices)
            raise ConfigError(name, f"{name} must be one of {allowed}; got {value!r}")
        return
    # bool is an int in Python, but True epochs is a mistake, not 1 epoch.
    if spec.type == "int":
        ok_type = isinstance(value, int) and not isinstance(value, bool)
        kind = "a whole number"
    else:
        ok_type = isinstance(value, int | float) and not isinstance(value, bool)
        kind = "a number"
        ok_type = ok_type and math.isfinite(value)
    if not ok_type or not (low is None or value >= low) or not (high is None or value <= high):
        raise ConfigError(name, f"{name} must be {kind} between {low} and {high}; got {value!r}")
