"""The address of the client that sent a request, as the portal's throttles see it.

Behind N trusted proxies (`LEPTON_TRUSTED_PROXIES`) each proxy appends the address it received
the request from to `X-Forwarded-For`, so the client is the N-th entry from the right; entries
further left were written by the client itself and prove nothing. With no trusted proxy the
header is ignored: anyone can send one. This is the rule DRF applies with `NUM_PROXIES`, which
the settings keep equal to ours, so a stock DRF throttle agrees with this helper.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Protocol

from django.conf import settings


class HasMeta(Protocol):
    """A Django HttpRequest or a DRF Request (which forwards `META` to the one it wraps)."""

    @property
    def META(self) -> Mapping[str, Any]: ...


def _normalized(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_address(request: HasMeta) -> str:
    """The client's IP address: REMOTE_ADDR, or X-Forwarded-For's N-th entry from the right."""
    remote = request.META.get("REMOTE_ADDR") or ""
    proxies: int = settings.LEPTON_TRUSTED_PROXIES
    if proxies <= 0:
        return _normalized(remote) or remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if not hops:
        return _normalized(remote) or remote
    # Fewer entries than proxies: the request came through fewer proxies than configured, and
    # the leftmost entry is the farthest address anyone recorded.
    chosen = _normalized(hops[-min(proxies, len(hops))])
    # A value that is no address (a misconfigured proxy) must not become a throttle key of the
    # client's choosing; the peer's address is then the best we know.
    return chosen or _normalized(remote) or remote
