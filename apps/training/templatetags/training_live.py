"""Formats of the live run page, shared with static/js/run.js.

The server renders the first paint with these filters; run.js formats the values the run API
reports afterwards with the same rules and the same (translated) words, which it reads from
``{% run_strings %}``. Change one side, change the other.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext

from apps.core.jobs import MAX_ATTEMPTS, JobStatus

register = template.Library()


def _fill(pattern: str, **values: Any) -> str:
    return pattern % values


def strings() -> dict[str, Any]:
    """The words run.js needs, translated."""
    return {
        "eta_s": gettext("%(s)s s"),
        "eta_min_s": gettext("%(m)s min %(s)s s"),
        "eta_min": gettext("%(m)s min"),
        "eta_h_min": gettext("%(h)s h %(m)s min"),
        "eta_h": gettext("%(h)s h"),
        "seconds": gettext("%(s)s s"),
        # English ordinals by CLDR plural category (Intl.PluralRules, type "ordinal").
        "ordinal": {
            "one": gettext("%(n)sst"),
            "two": gettext("%(n)snd"),
            "few": gettext("%(n)srd"),
            "other": gettext("%(n)sth"),
        },
        "queue": gettext("%(position)s in the %(queue)s queue"),
        "attempt": gettext("Attempt %(attempt)s of %(max)s"),
        "resumed": gettext(
            "%(attempt)s: continued from epoch %(epoch)s, the last checkpoint the previous "
            "worker stored."
        ),
        "restarted": gettext(
            "%(attempt)s: the previous worker stopped before its first checkpoint; started "
            "again from the beginning."
        ),
        "max_attempts": MAX_ATTEMPTS,
        "confirm_cancel": gettext(
            "Cancel this run? Training stops before its next step and no model is stored."
        ),
    }


@register.simple_tag
def run_strings() -> dict[str, Any]:
    return strings()


def _ordinal_category(n: int) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return "one"
    if n % 10 == 2 and n % 100 != 12:
        return "two"
    if n % 10 == 3 and n % 100 != 13:
        return "few"
    return "other"


@register.filter
def eta(seconds: float | None) -> str:
    """1 min 20 s, 45 s, 2 h 5 min; a dash when unknown."""
    if seconds is None:
        return "—"
    words = strings()
    s = max(0, int(seconds + 0.5))
    if s < 60:
        return _fill(words["eta_s"], s=s)
    if s < 3600:
        m, s = divmod(s, 60)
        return _fill(words["eta_min_s"], m=m, s=s) if s else _fill(words["eta_min"], m=m)
    h, rest = divmod(s, 3600)
    m = rest // 60
    return _fill(words["eta_h_min"], h=h, m=m) if m else _fill(words["eta_h"], h=h)


@register.simple_tag
def run_eta(run: Any) -> str:
    """The run's time left, only while it runs."""
    return eta(run.eta_seconds) if run.status == JobStatus.RUNNING else "—"


@register.filter
def queue_text(run: Any, position: int | None) -> str:
    """ "2nd in the gpu queue" while queued; empty otherwise."""
    if run.status != JobStatus.QUEUED or not position:
        return ""
    words = strings()
    ordinal = _fill(words["ordinal"][_ordinal_category(position)], n=position)
    return _fill(words["queue"], position=ordinal, queue=run.queue)


@register.filter
def attempt_text(run: Any) -> str:
    """Which attempt this is and where it continued from; empty for a first attempt."""
    if run.attempts <= 1 and not run.resumed_from_epoch:
        return ""
    words = strings()
    attempt = _fill(words["attempt"], attempt=run.attempts, max=MAX_ATTEMPTS)
    if run.resumed_from_epoch:
        return _fill(words["resumed"], attempt=attempt, epoch=run.resumed_from_epoch)
    return _fill(words["restarted"], attempt=attempt)


@register.filter
def percent(value: float | None) -> str:
    """0.4531 -> 45.3% (as Intl.NumberFormat's percent with one decimal at most)."""
    if value is None:
        return "—"
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"
