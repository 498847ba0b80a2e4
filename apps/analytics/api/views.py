from rest_framework import serializers

from apps.analytics.models import UsageEvent
from apps.core.api import TenantReadOnlyViewSet


class UsageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = UsageEvent
        fields = [
            "id",
            "kind",
            "endpoint",
            "status_code",
            "latency_ms",
            "api_key",
            "training_run",
            "device",
            "gpu_seconds",
            "created_at",
        ]
        read_only_fields = fields


class UsageEventViewSet(TenantReadOnlyViewSet):
    """Usage events of your organization, newest first: one per prediction call
    and one per finished training run (its device and GPU-seconds)."""

    model = UsageEvent
    serializer_class = UsageEventSerializer
