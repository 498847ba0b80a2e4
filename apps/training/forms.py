"""The model configuration page's fields: a template's knobs, grouped, with what was typed.

The knobs themselves (types, ranges, help) come from the template catalogue
(apps.training.templates), so the form, the API and the trainer cannot disagree; validation is
the service's (``model_config_create``). This module only decides what each input shows: the
value the person typed when the page comes back with an error, the default otherwise, and the
service's message beside the field it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext

from apps.core.errors import ServiceError
from apps.training.templates import GROUPS, Knob, Template

#: groups shown folded (<details>) unless one of their fields needs attention
COLLAPSIBLE = ("regularisation", "augmentation")
_TRUE = frozenset({"true", "on", "1", "yes"})


def plain_number(value: int | float) -> str:
    """``value`` as a number input accepts it, without an exponent (1e-05 -> 0.00001)."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value.is_integer():
        return str(int(value))
    return f"{value:.12f}".rstrip("0").rstrip(".")


def posted_knobs(template: Template, data: Mapping[str, Any]) -> dict[str, str]:
    """Each knob's posted text. A checkbox posts a hidden "false" before its "true", so the
    last value of a name wins; a knob not posted at all is left to its default."""
    values: dict[str, str] = {}
    for knob in template.knobs:
        posted = data.getlist(knob.name) if hasattr(data, "getlist") else [data.get(knob.name)]
        posted = [v for v in posted if v is not None]
        if posted:
            values[knob.name] = posted[-1]
    return values


@dataclass(frozen=True)
class KnobField:
    """One knob as an input: what it shows, and the service's message when it was refused."""

    knob: Knob
    value: str
    error: str = ""

    @property
    def name(self) -> str:
        return self.knob.name

    @property
    def kind(self) -> str:
        return self.knob.kind

    @property
    def label(self) -> str:
        return gettext(self.knob.label)

    @property
    def help(self) -> str:
        return gettext(self.knob.help)

    @property
    def checked(self) -> bool:
        return self.value.strip().lower() in _TRUE

    @property
    def choices(self) -> tuple[str, ...]:
        return self.knob.choices

    @property
    def changed(self) -> bool:
        """The shown value differs from the default (so its folded group opens)."""
        if self.kind == "bool":
            return self.checked != bool(self.knob.default)
        return self.value.strip() != self._default_text()

    def _default_text(self) -> str:
        if self.kind == "bool":
            return "true" if self.knob.default else "false"
        return plain_number(self.knob.default) if self.kind != "choice" else self.knob.default

    @property
    def allowed(self) -> str:
        """What the knob accepts, and its default, in words."""
        knob = self.knob
        if knob.kind == "bool":
            default = gettext("on") if knob.default else gettext("off")
            return gettext("Default: %(default)s.") % {"default": default}
        if knob.kind == "choice":
            return gettext("One of %(choices)s; default %(default)s.") % {
                "choices": ", ".join(knob.choices),
                "default": knob.default,
            }
        kind = gettext("A whole number") if knob.kind == "int" else gettext("A number")
        return gettext("%(kind)s from %(lo)s to %(hi)s; default %(default)s.") % {
            "kind": kind,
            "lo": plain_number(knob.minimum),  # type: ignore[arg-type]
            "hi": plain_number(knob.maximum),  # type: ignore[arg-type]
            "default": plain_number(knob.default),
        }


@dataclass(frozen=True)
class KnobGroup:
    key: str
    label: str
    fields: tuple[KnobField, ...]

    @property
    def collapsible(self) -> bool:
        return self.key in COLLAPSIBLE

    @property
    def open(self) -> bool:
        """A folded group opens when one of its fields has an error or a changed value."""
        return any(f.error or f.changed for f in self.fields)


def knob_groups(
    template: Template,
    typed: Mapping[str, str] | None = None,
    error: ServiceError | None = None,
) -> list[KnobGroup]:
    """The template's knobs as fields in groups (training first), showing ``typed`` values
    where given and defaults elsewhere; ``error`` is shown beside the knob it names."""
    typed = typed or {}
    fields: dict[str, list[KnobField]] = {key: [] for key in GROUPS}
    for knob in template.knobs:
        if knob.name in typed:
            value = typed[knob.name]
        elif knob.kind == "bool":
            value = "true" if knob.default else "false"
        elif knob.kind == "choice":
            value = knob.default
        else:
            value = plain_number(knob.default)
        message = error.message if error is not None and error.field == knob.name else ""
        fields.setdefault(knob.group, []).append(KnobField(knob=knob, value=value, error=message))
    return [
        KnobGroup(key=key, label=str(GROUPS.get(key, key)), fields=tuple(group))
        for key, group in fields.items()
        if group
    ]
