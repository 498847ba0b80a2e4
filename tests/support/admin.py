"""One row of every model the admin shows, for an organization, written straight to the database.

The admin only reads these rows (or changes what staff may change), so they are made the quick
way; the tests that delete through services use rows the services made for real.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from apps.accounts.models import User
from apps.analytics.models import UsageEvent
from apps.core.jobs import JobStatus
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion
from apps.deployments.models import Endpoint
from apps.training.models import EpochMetric, ModelConfig, ModelVersion, TrainingRun

GPU_SECONDS = 3725.0  # "1 h 2 min"
ACCURACY = 0.9666  # "96.7 %"
LATENCY_MS = 12.34  # "12.3 ms"
STORED_BYTES = 3 * 1024**2 // 2  # "1.5 MB"


@dataclass
class AdminRows:
    dataset: Dataset
    version: DatasetVersion
    item: DatasetItem
    config: ModelConfig
    run: TrainingRun
    model_version: ModelVersion
    endpoint: Endpoint
    usage: UsageEvent


def admin_rows(tenant: Any) -> AdminRows:
    """A finished ingestion and training, a deployed model and a prediction's usage event."""
    org, user = tenant.organization, tenant.user
    finished = timezone.now()
    started = finished - timedelta(seconds=GPU_SECONDS + 60)  # "1 h 3 min"
    done = {"status": JobStatus.SUCCEEDED, "progress": 1.0, "attempts": 1}
    done |= {"started_at": started, "finished_at": finished}
    dataset = Dataset.objects.create(organization=org, name=f"{org.name} photos", created_by=user)
    version = DatasetVersion.objects.create(
        organization=org,
        dataset=dataset,
        number=1,
        source_name="photos.zip",
        source_size=2048,
        stored_bytes=STORED_BYTES,
        item_count=1,
        class_counts={"circle": {"train": 1, "total": 1}},
        **done,
    )
    item = DatasetItem.objects.create(
        organization=org,
        version=version,
        file=f"orgs/{org.pk}/items/a.png",
        original_name="circles/a.png",
        label="circle",
        split="train",
        width=32,
        height=32,
        sha256="0" * 64,
        original_bytes=2048,
    )
    config = ModelConfig.objects.create(
        organization=org,
        name=f"{org.name} model",
        template="leptonnet",
        dataset_version=version,
        hyperparameters={"epochs": 1},
        created_by=user,
    )
    run = TrainingRun.objects.create(
        organization=org,
        model_config=config,
        epoch=1,
        total_epochs=1,
        train_accuracy=0.95,
        val_accuracy=ACCURACY,
        device="cuda",
        gpu_seconds=GPU_SECONDS,
        log="20:00:01 Epoch 1/1: loss 0.1200\n20:00:02 Stored model version 1.\n",
        created_by=user,
        **done,
    )
    EpochMetric.objects.create(
        organization=org, run=run, epoch=1, train_loss=0.12, val_accuracy=ACCURACY, seconds=61.0
    )
    model_version = ModelVersion.objects.create(
        organization=org,
        model_config=config,
        run=run,
        number=1,
        file=f"orgs/{org.pk}/models/m.pt",
        template="leptonnet",
        labels=["circle"],
        input_size=32,
        accuracy=ACCURACY,
    )
    endpoint = Endpoint.objects.create(
        organization=org, name=f"{org.name} api", model_version=model_version, created_by=user
    )
    usage = UsageEvent.objects.create(
        organization=org,
        endpoint=endpoint,
        status_code=200,
        latency_ms=LATENCY_MS,
        api_key=tenant.api_key,
    )
    return AdminRows(dataset, version, item, config, run, model_version, endpoint, usage)


def platform_admin() -> User:
    return User.objects.create_superuser(email="root@platform.example", password="x")


def admin_url(model: Any, view: str = "changelist", *args: Any) -> str:
    from django.urls import reverse

    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)
