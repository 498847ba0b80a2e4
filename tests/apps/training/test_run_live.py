"""The run page's live fragment (?fragment=live): what htmx swaps in about once a second.

Every value is formatted on the server; the fragment names, in its own next URL, the epoch count
and log it carries, so the next poll sends the curves and the log only when they changed. A
finished run's fragment carries no trigger (the polling stops) and brings the evaluation.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.core.jobs import JobStatus
from tests.apps.training.test_pages import (
    add_epochs,
    is_hidden,
    queued_run,
    run_page,
    set_run,
    shown,
)
from tests.conftest import trained_model_version


@pytest.fixture
def member(client, tenant):
    client.force_login(tenant.user)
    return client


def poll(client, url: str) -> str:
    response = client.get(url.replace("&amp;", "&"))
    assert response.status_code == 200
    return response.content.decode()


def next_url(html: str) -> str:
    """The URL the fragment's live part polls next ('' when it stopped polling)."""
    live = re.search(r'<section[^>]*data-testid="run-live"[^>]*>', html).group(0)
    if 'hx-trigger="every 1s"' not in live:
        return ""
    return re.search(r'hx-get="([^"]+)"', live).group(1)


def test_it_renders_the_live_values_formatted_on_the_server(member, tenant, ready_version):
    run = set_run(
        queued_run(tenant, ready_version),
        status=JobStatus.RUNNING,
        progress=0.4531,
        step=1234,
        total_steps=5000,
        train_loss=0.12345,
        eta_seconds=3900,
        gpu_seconds=2.5,
        log="first line\n",
    )
    html = run_page(member, run, "live").content.decode()
    assert "<html" not in html  # a fragment, not a page
    assert shown(html, "run-status") == "Running"
    assert shown(html, "run-progress") == "45.3%"
    assert (shown(html, "run-step"), shown(html, "run-total-steps")) == ("1,234", "5,000")
    assert shown(html, "run-loss") == "0.1235"
    assert shown(html, "run-eta") == "1 h 5 min"
    assert shown(html, "run-gpu-seconds") == "2.5 s"
    assert next_url(html).startswith(f"/models/runs/{run.pk}/?fragment=live&amp;epochs=0&amp;")


def test_it_sends_the_log_and_curves_only_when_they_changed(member, tenant, ready_version):
    run = set_run(queued_run(tenant, ready_version), status=JobStatus.RUNNING, log="one\n")
    html = run_page(member, run).content.decode()
    url = next_url(html)

    # Nothing new: the live part alone.
    again = poll(member, url)
    assert 'id="run-log"' not in again and 'id="curves"' not in again
    assert next_url(again) == url

    # An epoch ended and the log grew: both come out of band, and the next URL says so.
    set_run(run, log="one\ntwo\n", epoch=1)
    add_epochs(run, 1)
    changed = poll(member, url)
    log = re.search(r'<pre id="run-log" hx-swap-oob="innerHTML">(.*?)</pre>', changed, re.S)
    assert log.group(1).splitlines() == ["one", "two"]
    curves = re.search(r'<div id="curves" hx-swap-oob="innerHTML">.*?</svg>', changed, re.S)
    assert '<circle class="point train"' in curves.group(0)
    assert "epochs=1&amp;" in next_url(changed)
    quiet = poll(member, next_url(changed))
    assert 'id="run-log"' not in quiet and 'id="curves"' not in quiet


def test_a_finished_run_stops_polling_and_brings_its_evaluation(member, tenant, ready_version):
    version = trained_model_version(tenant, ready_version, epochs=1)
    run = version.run
    html = poll(member, f"/models/runs/{run.pk}/?fragment=live&epochs=1&log=0")
    assert next_url(html) == ""
    assert "hx-trigger" not in html
    assert shown(html, "run-status") == "Succeeded"
    assert '<div id="evaluation" hx-swap-oob="innerHTML">' in html
    assert 'data-testid="evaluation"' in html
    assert is_hidden(html, "cancel-form")
    assert re.search(r'<form[^>]*id="cancel-form"[^>]*hx-swap-oob="true"', html, re.S)
    # The page itself does not poll either.
    assert next_url(run_page(member, run).content.decode()) == ""


def test_a_cancelled_run_ends_without_an_evaluation(member, tenant, ready_version):
    run = set_run(queued_run(tenant, ready_version), status=JobStatus.CANCELLED)
    html = run_page(member, run, "live").content.decode()
    assert next_url(html) == ""
    assert '<div id="evaluation" hx-swap-oob="innerHTML">' in html
    assert 'data-testid="evaluation"' not in html


def test_the_cancel_form_asks_first_in_the_users_words(member, tenant, ready_version):
    run = queued_run(tenant, ready_version)
    html = run_page(member, run).content.decode()
    form = re.search(r'<form[^>]*data-testid="cancel-form"[^>]*>', html, re.S).group(0)
    assert 'data-confirm="Cancel this run? Training stops before its next step' in form
    assert reverse("training:cancel", kwargs={"pk": run.pk}) in form


def test_another_organization_gets_404_for_the_live_fragment(
    client, tenant, outsider, ready_version
):
    run = queued_run(tenant, ready_version)
    client.force_login(outsider.user)
    assert run_page(client, run, "live").status_code == 404
