"""Monthly predictions, monthly GPU-seconds and concurrent training runs: refused in the
services with 403 `quota_exceeded`, a message naming the quota, the use and who can raise it;
last month's use and another organization's use are not counted."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.analytics.models import UsageEvent
from apps.core.errors import QuotaExceeded
from apps.core.jobs import JobStatus
from apps.quotas.selectors import month_start
from apps.quotas.services import quota_override_set
from apps.training.models import ModelConfig, TrainingRun
from apps.training.services import model_config_create, training_run_start
from tests.apps.deployments.test_predict import deploy, seeded_model_version
from tests.conftest import as_file, png_bytes

LAST_MONTH = month_start() - timedelta(days=3)


def _predictions(organization, n, *, status_code=200, when=None):
    for _ in range(n):
        event = UsageEvent.objects.create(
            organization=organization,
            kind=UsageEvent.Kind.PREDICT,
            status_code=status_code,
            latency_ms=1.0,
        )
        if when is not None:
            UsageEvent.all_tenants.filter(pk=event.pk).update(created_at=when)


def test_predictions_stop_at_the_months_quota(api, client, tenant, outsider, tmp_path):
    url = deploy(api, seeded_model_version(tenant, tmp_path))
    quota_override_set(organization=tenant.organization, predictions_per_month=3)
    _predictions(tenant.organization, 2)
    _predictions(tenant.organization, 5, when=LAST_MONTH)  # last month's
    _predictions(tenant.organization, 5, status_code=400)  # refused calls are no predictions
    _predictions(outsider.organization, 5)

    def predict():
        return client.post(url, {"image": as_file(png_bytes())}, **tenant.auth)

    assert predict().status_code == 200  # the 3rd
    refused = predict()
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert "quota of 3 predictions this month" in error["message"]
    assert "3 served" in error["message"]
    assert "An owner can ask the platform's administrators to raise it." in error["message"]
    # The refusal is recorded as usage, as every answered call is, and is not a prediction.
    assert UsageEvent.objects.for_organization(tenant.organization).filter(status_code=403).exists()


def test_the_months_predictions_are_counted_without_a_count_per_call(api, client, tenant, tmp_path):
    """The quota reads a shared counter that each served prediction adds to; it is seeded from
    the usage table once, and again whenever the cache has lost it."""
    from apps.accounts.throttling import throttle_cache

    url = deploy(api, seeded_model_version(tenant, tmp_path))
    quota_override_set(organization=tenant.organization, predictions_per_month=3)

    def predict():
        return client.post(url, {"image": as_file(png_bytes())}, **tenant.auth)

    assert predict().status_code == 200  # seeds the counter at 0, then counts 1
    with CaptureQueriesContext(connection) as served:
        assert predict().status_code == 200
    assert not [q for q in served.captured_queries if "COUNT(" in q["sql"].upper()]
    assert predict().status_code == 200
    assert predict().status_code == 403
    throttle_cache().clear()  # lost (a Redis restart): seeded again from the usage table
    refused = predict()
    assert refused.status_code == 403
    assert "3 served" in refused.json()["error"]["message"]


@pytest.fixture
def config(tenant, outsider, ready_version):
    return model_config_create(
        organization=tenant.organization,
        user=tenant.user,
        name="quota model",
        template="leptonnet",
        dataset_version=ready_version,
        hyperparameters={"epochs": 1},
    )


def _run(config, *, status, gpu_seconds=0.0, organization=None, created_at=None):
    run = TrainingRun.all_tenants.create(
        organization=organization or config.organization,
        model_config=config,
        status=status,
        gpu_seconds=gpu_seconds,
    )
    if created_at is not None:
        TrainingRun.all_tenants.filter(pk=run.pk).update(created_at=created_at)
    return run


def test_concurrent_training_runs_are_limited(api, tenant, outsider, config):
    quota_override_set(organization=tenant.organization, concurrent_training_runs=2)
    _run(config, status=JobStatus.RUNNING)
    _run(config, status=JobStatus.SUCCEEDED)  # finished: not counted
    other = ModelConfig.all_tenants.create(
        organization=outsider.organization,
        name="theirs",
        template="leptonnet",
        dataset_version=config.dataset_version,
    )
    _run(other, status=JobStatus.QUEUED, organization=outsider.organization)
    training_run_start(model_config=config, user=tenant.user)  # the 2nd
    refused = api.post(f"/api/v1/models/{config.pk}/train/")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert "2 training runs queued or running at once, and has 2" in error["message"]
    assert "administrators" in error["message"]
    assert TrainingRun.all_tenants.filter(organization=tenant.organization).count() == 3


def test_gpu_seconds_stop_new_runs_once_the_month_is_used(tenant, outsider, config):
    quota_override_set(
        organization=tenant.organization, gpu_seconds_per_month=3600, concurrent_training_runs=None
    )
    _run(config, status=JobStatus.SUCCEEDED, gpu_seconds=3000)
    _run(config, status=JobStatus.SUCCEEDED, gpu_seconds=9000, created_at=LAST_MONTH)
    training_run_start(model_config=config, user=tenant.user)
    _run(config, status=JobStatus.SUCCEEDED, gpu_seconds=600)
    with pytest.raises(QuotaExceeded) as refused:
        training_run_start(model_config=config, user=tenant.user)
    message = refused.value.message
    assert "used 1 h 0 min of its 1 h 0 min of GPU time this month" in message
    assert "An owner can ask the platform's administrators to raise it." in message
    assert refused.value.status_code == 403


def test_month_start_is_the_first_of_the_month_in_utc():
    now = timezone.now()
    start = month_start(now)
    assert start.day == 1 and start.hour == 0 and start <= now
    assert start.utcoffset() == timedelta(0)


def test_the_train_again_button_over_the_quota_says_why(client, tenant, config):
    quota_override_set(organization=tenant.organization, concurrent_training_runs=0)
    client.force_login(tenant.user)
    response = client.post(f"/models/{config.pk}/train/", follow=True)
    assert response.status_code == 200
    page = response.content.decode().replace("&#x27;", "'")
    assert "may have 0 training runs queued or running at once" in page
    assert "An owner can ask the platform's administrators to raise it." in page
    assert not TrainingRun.all_tenants.filter(organization=tenant.organization).exists()
