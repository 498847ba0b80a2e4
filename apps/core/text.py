"""Small formatting helpers for messages people read."""

from __future__ import annotations


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
