"""Waiting on the page without eval.

Playwright's wait_for_function compiles its predicate with eval inside the page, which the
portal's Content-Security-Policy refuses (script-src 'self', no 'unsafe-eval'), as it should.
page.evaluate runs through the DevTools protocol, outside the page's policy, so polling it
works under the policy the customers get; the policy is never bypassed in tests.
"""

from __future__ import annotations

import time
from typing import Any


def wait_for_js(page: Any, expression: str, timeout: float = 30, interval: float = 0.1) -> Any:
    """Evaluate `expression` (JavaScript, an expression or a function) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never got there: {expression}")
        time.sleep(interval)
