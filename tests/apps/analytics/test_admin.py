"""Usage events are metering: the admin shows them readable and never makes or edits one."""

import pytest

from apps.analytics.models import UsageEvent
from tests.support.admin import admin_rows, admin_url, platform_admin


@pytest.fixture
def staff(client, db):
    client.force_login(platform_admin())
    return client


def test_it_shows_latencies_in_ms_and_gpu_time_in_readable_units(staff, tenant, outsider):
    rows = admin_rows(tenant)
    admin_rows(outsider)
    UsageEvent.objects.create(
        organization=tenant.organization, kind="training", training_run=rows.run, gpu_seconds=185
    )
    listing = staff.get(admin_url(UsageEvent)).content.decode()
    assert "12.3 ms" in listing and "3 min 5 s" in listing
    assert "0.0 s" not in listing  # a prediction uses no GPU time: a dash, not a measurement
    page = staff.get(admin_url(UsageEvent, "change", rows.usage.pk)).content.decode()
    assert "12.3 ms" in page


def test_it_neither_adds_nor_edits_a_usage_event(staff, tenant):
    usage = admin_rows(tenant).usage
    assert staff.get(admin_url(UsageEvent, "add")).status_code == 403
    response = staff.post(
        admin_url(UsageEvent, "change", usage.pk), {"latency_ms": "1", "status_code": "500"}
    )
    assert response.status_code == 403
    usage.refresh_from_db()
    assert (usage.latency_ms, usage.status_code) == (12.34, 200)
