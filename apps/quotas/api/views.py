"""GET /api/v1/usage/limits/: every limit of the caller's organization, its value and its use."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api import TenantAPIView
from apps.quotas.selectors import organization_limits_use


class PlanSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class LimitUseSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The limit's key, e.g. predictions_per_month.")
    description = serializers.CharField()
    unit = serializers.CharField(help_text="requests, predictions, seconds, runs or bytes.")
    window = serializers.CharField(
        help_text="minute (a rate), month (a calendar month in UTC) or now (a level)."
    )
    value = serializers.IntegerField(allow_null=True, help_text="null: unlimited.")
    used = serializers.FloatField(
        allow_null=True,
        help_text="What the organization uses of it; null for rates (a 429 says when to retry).",
    )
    overridden = serializers.BooleanField(
        help_text="Set for your organization alone, over the plan's value."
    )


class LimitsSerializer(serializers.Serializer):
    plan = PlanSerializer()
    limits = LimitUseSerializer(many=True)


class UsageLimitsView(TenantAPIView):
    """Your organization's plan, and each limit with its value and what you use of it.

    Rates (requests per minute) answer 429 with Retry-After when spent; quotas (per month,
    concurrent runs, storage) answer 403 with the code `quota_exceeded`. Only the platform's
    administrators change them: an owner can ask them to.
    """

    @extend_schema(responses={200: LimitsSerializer})
    def get(self, request: Request) -> Response:
        limits, rows = organization_limits_use(organization=self.organization)
        return Response(
            {
                "plan": {"slug": limits.plan_slug, "name": limits.plan_name},
                "limits": [asdict(row) for row in rows],
            }
        )
