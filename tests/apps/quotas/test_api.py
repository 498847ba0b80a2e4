"""GET /api/v1/usage/limits/: each limit with its value and the organization's own use."""

from apps.analytics.models import UsageEvent
from apps.quotas.services import quota_override_set

URL = "/api/v1/usage/limits/"


def test_it_lists_each_limit_with_its_value_and_use(api, client, tenant, outsider):
    quota_override_set(organization=tenant.organization, predictions_per_month=10)
    for organization in (tenant.organization, outsider.organization, outsider.organization):
        UsageEvent.objects.create(
            organization=organization, kind=UsageEvent.Kind.PREDICT, status_code=200
        )
    body = api.get(URL).json()
    assert body["plan"] == {"slug": "team", "name": "Team"}
    limits = {row["name"]: row for row in body["limits"]}
    assert len(limits) == 8
    assert limits["predictions_per_month"] | {"description": ""} == {
        "name": "predictions_per_month",
        "description": "",
        "unit": "predictions",
        "window": "month",
        "value": 10,
        "used": 1,
        "overridden": True,
    }
    assert limits["storage_bytes"]["value"] == 5 * 1024**3
    assert limits["api_requests_per_minute_per_key"] == limits[
        "api_requests_per_minute_per_key"
    ] | {"value": 600, "used": None, "overridden": False}
    theirs = client.get(URL, **outsider.auth).json()
    assert {row["name"]: row["used"] for row in theirs["limits"]}["predictions_per_month"] == 2


def test_it_needs_credentials(client, db):
    assert client.get(URL).status_code == 401
