"""Small formatting helpers for numbers people read: messages, the admin, pages."""

from __future__ import annotations

from django.utils import formats
from django.utils.translation import gettext as _


def human_size(n_bytes: float) -> str:
    """1536 -> '1.5 KB', 5 * 1024**2 -> '5 MB': a limit printed as '0 MB' helps nobody."""
    size = float(n_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(size)} bytes"
            return f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    raise AssertionError("unreachable")


def _number(value: float, places: int) -> str:
    return formats.number_format(round(value, places), places)


def human_percent(fraction: float) -> str:
    """0.9666 -> '96.7 %' (as the evaluation pages write shares)."""
    return f"{_number(fraction * 100, 1)} %"


def human_ms(milliseconds: float) -> str:
    """4.25 -> '4.3 ms', 153.4 -> '153 ms': a tenth of a millisecond matters only below 100."""
    return _("%(ms)s ms") % {"ms": _number(milliseconds, 1 if milliseconds < 100 else 0)}


def human_duration(seconds: float) -> str:
    """'4.2 s', '42 s', '3 min 5 s', '2 h 14 min', '3 d 4 h': how long something took."""
    total = round(seconds)
    if total < 60:
        places = 1 if seconds < 10 else 0
        return _("%(s)s s") % {"s": _number(seconds, places)}
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return _("%(m)s min %(s)s s") % {"m": minutes, "s": secs}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    days, hours = divmod(hours, 24)
    return _("%(d)s d %(h)s h") % {"d": days, "h": hours}


_UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1}
_UNITS |= {f"{p}{s}": 1024**n for n, p in enumerate("kmgt", 1) for s in ("", "b", "ib")}


def parse_size(text: str) -> int:
    """'5 GB' -> 5368709120, '1.5 KB' -> 1536, '512' -> 512: sizes as human_size writes them
    (its units count in 1024s), typed back by people.

    Raises ValueError with a message saying what is accepted.
    """
    cleaned = text.strip().lower().replace(",", "").replace("_", "")
    number = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz ")
    unit = cleaned[len(number) :].strip()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in _UNITS or not value >= 0 or value == float("inf"):
        raise ValueError(
            _("'%(text)s' is not a size: write a number of bytes, or one with KB, MB, GB or TB.")
            % {"text": text}
        )
    return round(value * _UNITS[unit])
