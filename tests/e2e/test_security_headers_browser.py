"""The Permissions-Policy as Chromium reads it: every feature it names is one the browser
knows (no console error on any page), and the page may use none of them."""

from __future__ import annotations

import pytest

from apps.core.security import DENIED_FEATURES

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_chromium_denies_the_page_every_powerful_feature(embedded_stack, chromium):
    context = chromium.new_context()
    page = context.new_page()
    complaints: list[str] = []
    page.on(
        "console",
        lambda m: complaints.append(m.text) if "ermissions" in m.text or "feature" in m.text else 0,
    )
    response = page.goto(f"{embedded_stack.base_url}/accounts/login/")
    assert response is not None and response.status == 200
    assert "camera=()" in response.headers["permissions-policy"]
    page.reload()  # console messages about the header arrive with the document
    allowed = page.evaluate(
        "names => names.filter(name => document.featurePolicy.allowsFeature(name))",
        list(DENIED_FEATURES),
    )
    known = page.evaluate("() => document.featurePolicy.features()")
    context.close()

    assert allowed == []
    assert complaints == []
    # Chromium lists the features it knows; none of ours is unknown to it.
    assert set(DENIED_FEATURES) <= set(known), set(DENIED_FEATURES) - set(known)
