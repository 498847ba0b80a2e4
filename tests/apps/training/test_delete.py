"""Deleting models and endpoints: rows and files gone, usage kept, refusals that leave
everything as it was (another organization, another member's, a run under way, a model still
deployed), and the chain a customer follows: endpoint, then model, then dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from apps.analytics.models import UsageEvent
from apps.audit.models import AuditEvent
from apps.core.jobs import JobStatus
from apps.datasets.models import Dataset
from apps.deployments.models import Endpoint
from apps.tenants.models import Membership, Role
from apps.training.models import EpochMetric, ModelConfig, ModelVersion, TrainingRun
from apps.training.services import model_config_create, training_run_start
from tests.conftest import PASSWORD, as_file, png_bytes, trained_model_version


@pytest.fixture
def trained(tenant, outsider, ready_version) -> ModelVersion:
    return trained_model_version(tenant, ready_version, epochs=1)


def stored(name: str) -> Path:
    return Path(settings.MEDIA_ROOT, name)


def test_a_model_endpoint_and_dataset_are_deleted_in_turn(
    api, tenant, trained, django_capture_on_commit_callbacks
):
    config = trained.model_config
    run = trained.run
    model_file = stored(trained.file.name)
    assert model_file.exists() and EpochMetric.all_tenants.filter(run=run).exists()
    endpoint = api.post("/api/v1/endpoints/", {"model_version": str(trained.pk), "name": "shop"})
    assert endpoint.status_code == 201, endpoint.content
    endpoint = endpoint.json()
    predict_url = endpoint["predict_url"]
    assert api.post(predict_url, {"image": as_file(png_bytes())}).status_code == 200
    calls = UsageEvent.all_tenants.filter(organization=tenant.organization).count()

    # The dataset goes last: models were trained on it; the model goes after its endpoint.
    refused = api.delete(f"/api/v1/datasets/{config.dataset_version.dataset_id}/")
    assert refused.status_code == 409 and "'shapes model'" in refused.json()["error"]["message"]
    refused = api.delete(f"/api/v1/models/{config.pk}/")
    assert refused.status_code == 409
    assert "deployed as the endpoint(s) 'shop'" in refused.json()["error"]["message"]
    assert ModelVersion.all_tenants.filter(pk=trained.pk).exists() and model_file.exists()

    assert api.delete(f"/api/v1/endpoints/{endpoint['id']}/").status_code == 204
    assert not Endpoint.all_tenants.filter(pk=endpoint["id"]).exists()
    assert api.post(predict_url, {"image": as_file(png_bytes())}).status_code == 404
    assert UsageEvent.all_tenants.filter(organization=tenant.organization).count() >= calls

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/v1/models/{config.pk}/")
    assert response.status_code == 204, response.content
    assert not ModelConfig.all_tenants.filter(pk=config.pk).exists()
    assert not TrainingRun.all_tenants.filter(pk=run.pk).exists()
    assert not EpochMetric.all_tenants.filter(run_id=run.pk).exists()
    assert not model_file.exists()
    # Usage stays, without the run: past training still counts.
    training = UsageEvent.all_tenants.filter(organization=tenant.organization, kind="training")
    assert training.count() == 1 and training.get().training_run is None
    actions = set(
        AuditEvent.all_tenants.filter(organization=tenant.organization).values_list(
            "action", flat=True
        )
    )
    assert {"endpoint.delete", "model.delete"} <= actions

    assert api.delete(f"/api/v1/datasets/{config.dataset_version.dataset_id}/").status_code == 204
    assert not Dataset.all_tenants.filter(organization=tenant.organization).exists()


def test_a_model_with_a_run_under_way_is_not_deleted(api, tenant, ready_version):
    config = model_config_create(
        organization=tenant.organization,
        user=tenant.user,
        name="busy",
        template="leptonnet",
        dataset_version=ready_version,
    )
    run = training_run_start(model_config=config, user=tenant.user)
    assert run.status == JobStatus.QUEUED
    response = api.delete(f"/api/v1/models/{config.pk}/")
    assert response.status_code == 409
    assert "queued or training. Cancel it" in response.json()["error"]["message"]
    assert TrainingRun.all_tenants.filter(pk=run.pk).exists()


def test_another_organization_gets_404_for_models_and_endpoints(api, client, outsider, trained):
    endpoint = api.post("/api/v1/endpoints/", {"model_version": str(trained.pk)}).json()
    for url in (
        f"/api/v1/models/{trained.model_config_id}/",
        f"/api/v1/endpoints/{endpoint['id']}/",
    ):
        assert client.delete(url, **outsider.auth).status_code == 404
    assert Endpoint.all_tenants.filter(pk=endpoint["id"]).exists()
    assert ModelConfig.all_tenants.filter(pk=trained.model_config_id).exists()


def test_a_member_deletes_their_own_model_but_not_anothers(client, tenant, ready_version):
    from django.contrib.auth import get_user_model

    from apps.accounts.services import api_key_create

    user = get_user_model().objects.create_user(email="member@acme.example", password=PASSWORD)
    Membership.objects.create(user=user, organization=tenant.organization, role=Role.MEMBER)
    _key, raw = api_key_create(organization=tenant.organization, user=user, name="member")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    made = {
        who: model_config_create(
            organization=tenant.organization,
            user=who,
            name=f"by {who.email}",
            template="leptonnet",
            dataset_version=ready_version,
        )
        for who in (tenant.user, user)
    }
    refused = client.delete(f"/api/v1/models/{made[tenant.user].pk}/", **auth)
    assert refused.status_code == 403
    assert "Only the member who created the model" in refused.json()["error"]["message"]
    assert client.delete(f"/api/v1/models/{made[user].pk}/", **auth).status_code == 204
    assert list(ModelConfig.all_tenants.filter(organization=tenant.organization)) == [
        made[tenant.user]
    ]


def test_the_pages_delete_an_endpoint_then_its_model_once_the_name_is_typed(
    client, api, tenant, trained
):
    endpoint = api.post("/api/v1/endpoints/", {"model_version": str(trained.pk), "name": "shop"})
    endpoint_id = endpoint.json()["id"]
    client.force_login(tenant.user)
    endpoint_url = reverse("deployments:delete", kwargs={"pk": endpoint_id})
    assert f'action="{endpoint_url}"' in client.get(f"/endpoints/{endpoint_id}/").content.decode()
    wrong = client.post(endpoint_url, {"confirm_name": "Shop"}, follow=True)
    assert "Type the name, shop, exactly as shown" in wrong.content.decode()
    assert Endpoint.all_tenants.filter(pk=endpoint_id).exists()
    done = client.post(endpoint_url, {"confirm_name": "shop"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("deployments:list")
    assert "Deleted the endpoint &#x27;shop&#x27;" in done.content.decode()

    model_url = reverse("training:delete", kwargs={"pk": trained.model_config_id})
    run_page = client.get(reverse("training:run", kwargs={"pk": trained.run_id}))
    assert f'action="{model_url}"' in run_page.content.decode()
    assert client.get(model_url).status_code == 405
    done = client.post(model_url, {"confirm_name": "shapes model"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("training:list")
    text = done.content.decode()
    assert (
        "Deleted the model &#x27;shapes model&#x27; with its 1 run and 1 trained version." in text
    )
    assert not ModelConfig.all_tenants.filter(pk=trained.model_config_id).exists()
