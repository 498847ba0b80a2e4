from __future__ import annotations

import uuid

import pytest


@pytest.fixture(autouse=True)
def _own_throttle_counters(settings) -> None:
    """Each test counts attempts under keys of its own, in the shared throttle cache: counters
    outlive a test, and clearing the cache would flush a Redis database others use."""
    throttle = settings.CACHES["throttle"] | {"KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}"}
    settings.CACHES = settings.CACHES | {"throttle": throttle}
