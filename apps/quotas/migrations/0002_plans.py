"""The three plans (their numbers are in the README, "Limits and quotas"), and the storage
quotas staff had set on organizations, moved into those organizations' overrides."""

from django.conf import settings
from django.db import migrations

GIB = 1024**3
#: the default of Organization.storage_quota_bytes: organizations left at it follow their plan
OLD_DEFAULT_STORAGE = 5 * GIB

PLANS = [
    {
        "slug": "free",
        "name": "Free",
        "api_requests_per_minute_per_key": 60,
        "api_requests_per_minute_per_organization": 120,
        "predict_requests_per_minute_per_key": 60,
        "predict_requests_per_minute_per_organization": 120,
        "predictions_per_month": 10_000,
        "gpu_seconds_per_month": 3_600,
        "concurrent_training_runs": 1,
        "storage_bytes": 1 * GIB,
    },
    {
        "slug": "team",
        "name": "Team",
        "api_requests_per_minute_per_key": 600,
        "api_requests_per_minute_per_organization": 1_200,
        "predict_requests_per_minute_per_key": 1_200,
        "predict_requests_per_minute_per_organization": 3_000,
        "predictions_per_month": 1_000_000,
        "gpu_seconds_per_month": 360_000,
        "concurrent_training_runs": 4,
        "storage_bytes": 5 * GIB,
    },
    {
        "slug": "enterprise",
        "name": "Enterprise",
        "api_requests_per_minute_per_key": 3_000,
        "api_requests_per_minute_per_organization": 10_000,
        "predict_requests_per_minute_per_key": 6_000,
        "predict_requests_per_minute_per_organization": 30_000,
        "predictions_per_month": None,
        "gpu_seconds_per_month": None,
        "concurrent_training_runs": 16,
        "storage_bytes": 1024 * GIB,
    },
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("quotas", "Plan")
    for values in PLANS:
        Plan.objects.update_or_create(slug=values["slug"], defaults=values)


def move_storage_quotas(apps, schema_editor):
    Plan = apps.get_model("quotas", "Plan")
    Organization = apps.get_model("tenants", "Organization")
    OrganizationQuota = apps.get_model("quotas", "OrganizationQuota")
    plan = Plan.objects.filter(slug=settings.LEPTON_DEFAULT_PLAN).first() or Plan.objects.get(
        slug="team"
    )
    for organization in Organization.objects.exclude(storage_quota_bytes=OLD_DEFAULT_STORAGE):
        OrganizationQuota.objects.update_or_create(
            organization=organization,
            defaults={"plan": plan, "storage_bytes": organization.storage_quota_bytes},
        )


def move_storage_quotas_back(apps, schema_editor):
    Organization = apps.get_model("tenants", "Organization")
    OrganizationQuota = apps.get_model("quotas", "OrganizationQuota")
    for quota in OrganizationQuota.objects.exclude(storage_bytes=None):
        Organization.objects.filter(pk=quota.organization_id).update(
            storage_quota_bytes=quota.storage_bytes
        )


class Migration(migrations.Migration):
    dependencies = [("quotas", "0001_initial")]

    operations = [
        migrations.RunPython(create_plans, migrations.RunPython.noop),
        migrations.RunPython(move_storage_quotas, move_storage_quotas_back),
    ]
