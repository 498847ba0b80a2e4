"""Formats of the live run page (templates/training/_run_live.html).

The page and each of its live updates are rendered on the server with these filters, so every
value is formatted in one place, in the user's language.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext

from apps.core.jobs import MAX_ATTEMPTS, JobStatus

register = template.Library()


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st (English ordinals by CLDR plural category)."""
    words = {
        "one": gettext("%(n)sst"),
        "two": gettext("%(n)snd"),
        "few": gettext("%(n)srd"),
        "other": gettext("%(n)sth"),
    }
    return words[_ordinal_category(n)] % {"n": n}


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
    s = max(0, int(seconds + 0.5))
    if s < 60:
        return gettext("%(s)s s") % {"s": s}
    if s < 3600:
        m, s = divmod(s, 60)
        if s:
            return gettext("%(m)s min %(s)s s") % {"m": m, "s": s}
        return gettext("%(m)s min") % {"m": m}
    h, rest = divmod(s, 3600)
    m = rest // 60
    if m:
        return gettext("%(h)s h %(m)s min") % {"h": h, "m": m}
    return gettext("%(h)s h") % {"h": h}


@register.simple_tag
def run_eta(run: Any) -> str:
    """The run's time left, only while it runs."""
    return eta(run.eta_seconds) if run.status == JobStatus.RUNNING else "—"


@register.filter
def queue_text(run: Any, position: int | None) -> str:
    """ "2nd in the gpu queue" while queued; empty otherwise."""
    if run.status != JobStatus.QUEUED or not position:
        return ""
    return gettext("%(position)s in the %(queue)s queue") % {
        "position": _ordinal(position),
        "queue": run.queue,
    }


@register.filter
def attempt_text(run: Any) -> str:
    """Which attempt this is and where it continued from; empty for a first attempt."""
    if run.attempts <= 1 and not run.resumed_from_epoch:
        return ""
    attempt = gettext("Attempt %(attempt)s of %(max)s") % {
        "attempt": run.attempts,
        "max": MAX_ATTEMPTS,
    }
    if run.resumed_from_epoch:
        return gettext(
            "%(attempt)s: continued from epoch %(epoch)s, the last checkpoint the previous "
            "worker stored."
        ) % {"attempt": attempt, "epoch": run.resumed_from_epoch}
    return gettext(
        "%(attempt)s: the previous worker stopped before its first checkpoint; started "
        "again from the beginning."
    ) % {"attempt": attempt}


@register.filter
def percent(value: float | None) -> str:
    """0.4531 -> 45.3% (one decimal at most)."""
    if value is None:
        return "—"
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"
