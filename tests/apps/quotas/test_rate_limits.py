"""Requests per minute per API key and per organization, on the API and apart on predict: the
request over the limit answers 429 with Retry-After and a message naming the limit; another
organization's requests are not counted; counts are exact under concurrency."""

from concurrent.futures import ThreadPoolExecutor

from apps.accounts.services import api_key_create
from apps.accounts.throttling import Rate, window_spend
from apps.analytics.models import UsageEvent
from apps.quotas.services import quota_override_set
from tests.apps.deployments.test_predict import deploy, seeded_model_version
from tests.conftest import as_file, png_bytes

TEMPLATES = "/api/v1/templates/"


def _refusal(response):
    assert response.status_code == 429, response.content
    assert 1 <= int(response["Retry-After"]) <= 60
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert "administrators" in error["message"]
    return error["message"]


def test_the_key_over_its_limit_answers_429_and_others_go_on(client, tenant, outsider):
    quota_override_set(organization=tenant.organization, api_requests_per_minute_per_key=3)
    for _ in range(3):
        assert client.get(TEMPLATES, **tenant.auth).status_code == 200
    message = _refusal(client.get(TEMPLATES, **tenant.auth))
    assert "3 API requests per minute with one API key" in message
    assert "(set for your organization)" in message
    # Another key of the same organization has its own budget; another organization its own.
    _key, raw = api_key_create(organization=tenant.organization, user=tenant.user, name="b")
    assert client.get(TEMPLATES, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    assert client.get(TEMPLATES, **outsider.auth).status_code == 200


def test_browser_session_calls_count_toward_the_organizations_limit(client, tenant, outsider):
    quota_override_set(organization=tenant.organization, api_requests_per_minute_per_organization=2)
    assert client.get(TEMPLATES, **tenant.auth).status_code == 200
    client.force_login(tenant.user)
    assert client.get(TEMPLATES).status_code == 200
    message = _refusal(client.get(TEMPLATES))
    assert "2 API requests per minute for your organization" in message
    _refusal(client.get(TEMPLATES, **tenant.auth))
    client.logout()
    assert client.get(TEMPLATES, **outsider.auth).status_code == 200


def test_predict_has_its_own_budget(api, client, tenant, outsider, tmp_path):
    url = deploy(api, seeded_model_version(tenant, tmp_path))
    quota_override_set(
        organization=tenant.organization,
        api_requests_per_minute_per_key=1,
        predict_requests_per_minute_per_key=2,
    )
    _refusal(client.get(TEMPLATES, **tenant.auth))  # deploy() spent the API budget

    def predict():
        return client.post(url, {"image": as_file(png_bytes())}, **tenant.auth)

    assert predict().status_code == 200
    assert predict().status_code == 200
    message = _refusal(predict())
    assert "2 predict requests per minute with one API key" in message
    # Refused before the view: counted in the cache only, no usage row (a flood writes nothing).
    statuses = UsageEvent.objects.for_organization(tenant.organization).values_list(
        "status_code", flat=True
    )
    assert sorted(statuses) == [200, 200]


def test_a_limit_of_zero_refuses_every_request(client, tenant):
    quota_override_set(organization=tenant.organization, api_requests_per_minute_per_key=0)
    _refusal(client.get(TEMPLATES, **tenant.auth))  # unlimited is None, not 0


def test_parallel_requests_are_counted_exactly(db):
    rate = Rate(limit=50, window=60)

    def spend(_n):
        return window_spend([("test:parallel", rate)])[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        waits = list(pool.map(spend, range(120)))
    assert sum(1 for wait in waits if wait is None) == 50


def test_a_plans_limit_is_named_with_the_plan(db):
    from apps.quotas.models import Plan
    from apps.quotas.selectors import limits_of
    from apps.quotas.throttling import _refusal_message

    limits = limits_of(Plan.objects.get(slug="team"), None)
    message = _refusal_message("predict_requests_per_minute_per_organization", 3000, 7, limits)
    assert message.startswith(
        "Rate limit reached: 3000 predict requests per minute for your organization (plan Team)."
    )
    assert "Try again in 7 seconds." in message
