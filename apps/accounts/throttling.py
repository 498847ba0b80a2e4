"""Budgets of attempts per account and per client address: log-in (page and HTTP Basic), sign-up,
password-reset and email-change requests.

A guard holds two budgets, one per account (the email, case-insensitive) and one per client
address (`apps.core.client_ip`). Once either is spent, every attempt is refused, the right
password included, until its window ends; the refusal says in how many seconds.

A window starts with the first attempt counted after the previous one ended: an anchor key
holds its start (written with `add`, so concurrent processes agree on one) and the count lives
under a key named after that start. Counts live in the `throttle` cache, which every process
shares: Redis with REDIS_URL, where `add` is SET NX and `incr` is INCRBY, both atomic; in the
embedded default a FileBasedCache under LEPTON_DATA_DIR. Its `add` and `incr` are a read then
a write (each file is replaced atomically, so a reader never sees half a value, but two
processes could both read 3 and both write 4), so they run under an exclusive `flock` on one
lock file in the cache's folder, which makes counts exact across the processes of one host.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.filebased import FileBasedCache
from django.utils.translation import ngettext

from apps.core.client_ip import HasMeta, client_address
from apps.core.errors import ServiceError

CACHE_ALIAS = "throttle"
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNITS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Rate:
    """`limit` attempts per `window` seconds, written like DRF's rates: "10/minute", "30/hour"."""

    limit: int
    window: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        count, _, unit = text.partition("/")
        unit = unit.strip().lower()
        seconds = _UNITS.get(unit) or _UNITS.get(unit.removesuffix("s"))
        if not count.strip().isdigit() or seconds is None:
            raise ValueError(f"{text!r}: write a rate as <count>/<second|minute|hour|day>")
        return cls(limit=int(count), window=seconds)


class TooManyAttempts(ServiceError):
    """A budget is spent; `retry_after` seconds until its window ends."""

    status_code = 429
    code = "throttled"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        message = ngettext(
            "Too many attempts; try again in %(seconds)d second.",
            "Too many attempts; try again in %(seconds)d seconds.",
            retry_after,
        ) % {"seconds": retry_after}
        super().__init__(message)


def normalized_account(email: str) -> str:
    return email.strip().lower()


def throttle_cache() -> BaseCache:
    return caches[CACHE_ALIAS]


@contextmanager
def _exclusive(cache: BaseCache) -> Iterator[None]:
    if not isinstance(cache, FileBasedCache):
        yield  # Redis: each operation is atomic on the server
        return
    folder = Path(settings.CACHES[CACHE_ALIAS]["LOCATION"])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "throttle.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class _Budget:
    key: str
    rate: Rate

    def add(self, cache: BaseCache, now: float, delta: int) -> int | None:
        """Add `delta` to this window's count; the seconds left in the window if it is spent."""
        # The count outlives its anchor a little, so no reader of the anchor finds it gone.
        timeout = self.rate.window + 5
        cache.add(f"{self.key}:start", now, timeout=self.rate.window)
        start = cache.get(f"{self.key}:start", now)
        counter = f"{self.key}:{start}"
        cache.add(counter, 0, timeout=timeout)
        count: int | None
        try:
            count = cache.incr(counter, delta)
        except ValueError:  # expired between add and incr
            count = None
        if count is None or count < 0:
            # Expired, or a release after its window rolled over: the new one owes nothing back.
            count = max(0, delta)
            cache.set(counter, count, timeout=timeout)
        if count <= self.rate.limit:
            return None
        return max(1, math.ceil(start + self.rate.window - now))


@dataclass(frozen=True)
class AttemptGuard:
    """Two budgets for one kind of attempt; the rates are read from settings at each call.

    An attempt takes its place in both budgets before it is tried (`reserve`), so parallel
    attempts cannot all slip past a check that has not counted them yet; one that succeeds
    and should not count gives its place back (`release`).
    """

    scope: str
    account_rate_setting: str
    address_rate_setting: str

    def _budgets(self, request: HasMeta, account: str) -> list[_Budget]:
        budgets = [
            _Budget(
                f"{self.scope}:address:{_digest(client_address(request))}",
                Rate.parse(getattr(settings, self.address_rate_setting)),
            )
        ]
        if account:
            budgets.append(
                _Budget(
                    f"{self.scope}:account:{_digest(normalized_account(account))}",
                    Rate.parse(getattr(settings, self.account_rate_setting)),
                )
            )
        return budgets

    def reserve(self, request: HasMeta, *, account: str) -> None:
        """Count one attempt; raise TooManyAttempts if that goes over either budget."""
        cache, now = throttle_cache(), time.time()
        with _exclusive(cache):
            waits = [budget.add(cache, now, 1) for budget in self._budgets(request, account)]
        longest = max((wait for wait in waits if wait is not None), default=None)
        if longest is not None:
            raise TooManyAttempts(longest)

    def release(self, request: HasMeta, *, account: str) -> None:
        """Give back the place of a reserved attempt that succeeded."""
        cache, now = throttle_cache(), time.time()
        with _exclusive(cache):
            for budget in self._budgets(request, account):
                budget.add(cache, now, -1)


def _digest(value: str) -> str:
    # Cache keys must be short and plain; emails and IPv6 addresses are neither, always.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


#: Failed log-ins, on the page and through HTTP Basic alike: one budget per account for both.
LOGIN = AttemptGuard(
    "login",
    account_rate_setting="LEPTON_LOGIN_RATE_PER_ACCOUNT",
    address_rate_setting="LEPTON_LOGIN_RATE_PER_ADDRESS",
)
#: Every sign-up attempt, on the page and through the API.
SIGNUP = AttemptGuard(
    "signup",
    account_rate_setting="LEPTON_SIGNUP_RATE_PER_ACCOUNT",
    address_rate_setting="LEPTON_SIGNUP_RATE_PER_ADDRESS",
)
#: Every password-reset request, whether or not the email belongs to an account, so the budget
#: says nothing about which emails exist.
PASSWORD_RESET = AttemptGuard(
    "password_reset",
    account_rate_setting="LEPTON_PASSWORD_RESET_RATE_PER_ACCOUNT",
    address_rate_setting="LEPTON_PASSWORD_RESET_RATE_PER_ADDRESS",
)
#: Every email-change request that would send its two messages, counted against the account
#: that asks (its current email), so a borrowed session cannot flood an inbox.
EMAIL_CHANGE = AttemptGuard(
    "email_change",
    account_rate_setting="LEPTON_EMAIL_CHANGE_RATE_PER_ACCOUNT",
    address_rate_setting="LEPTON_EMAIL_CHANGE_RATE_PER_ADDRESS",
)


def window_spend(budgets: list[tuple[str, Rate]]) -> list[int | None]:
    """Count one event in each (key, rate) budget, under one lock; for each, the seconds left
    in its window once the count is over the rate's limit, else None.

    The windows are those of AttemptGuard (fixed, starting at the first event counted after
    the previous one ended), shared by every process through the `throttle` cache. Other apps'
    limits (apps.quotas.throttling) count here so they hold across web processes alike.
    """
    cache, now = throttle_cache(), time.time()
    with _exclusive(cache):
        return [_Budget(key, rate).add(cache, now, 1) for key, rate in budgets]


def shared_counter_incr(key: str) -> int | None:
    """Add one to a counter in the `throttle` cache, atomically across processes; None when
    the counter does not exist (whoever reads it next seeds it from its source of truth)."""
    cache = throttle_cache()
    with _exclusive(cache):
        try:
            return cache.incr(key)
        except ValueError:
            return None


def shared_counter_get(key: str, seed: Callable[[], int], timeout: float) -> int:
    """A counter of the `throttle` cache; when missing, `seed()` gives its value, stored for
    `timeout` seconds (the first of several processes seeding at once wins)."""
    cache = throttle_cache()
    value = cache.get(key)
    if value is None:
        seeded = seed()
        with _exclusive(cache):
            cache.add(key, seeded, timeout)
            value = cache.get(key, seeded)
    return int(value)
