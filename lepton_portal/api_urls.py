"""/api/v1/: every route here is walked by tests/apps/core/test_api_isolation.py."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from apps.accounts.api.views import (
    ApiKeyViewSet,
    OrganizationListView,
    OrganizationView,
    SignupView,
)
from apps.analytics.api.views import UsageEventViewSet
from apps.datasets.api.views import DatasetItemViewSet, DatasetVersionViewSet, DatasetViewSet
from apps.deployments.api.views import EndpointViewSet
from apps.quotas.api.views import UsageLimitsView
from apps.tenants.api.views import InvitationViewSet, MemberViewSet
from apps.training.api.views import (
    LeaderboardView,
    ModelConfigViewSet,
    ModelVersionViewSet,
    TemplateListView,
    TrainingRunViewSet,
)

router = SimpleRouter(use_regex_path=False)
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("dataset-versions", DatasetVersionViewSet, basename="dataset-version")
router.register("dataset-items", DatasetItemViewSet, basename="dataset-item")
router.register("models", ModelConfigViewSet, basename="model")
router.register("runs", TrainingRunViewSet, basename="run")
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("endpoints", EndpointViewSet, basename="endpoint")
router.register("usage", UsageEventViewSet, basename="usage")
router.register("members", MemberViewSet, basename="member")
router.register("invitations", InvitationViewSet, basename="invitation")

app_name = "api"
urlpatterns = [
    path("auth/signup/", SignupView.as_view(), name="signup"),
    path("organization/", OrganizationView.as_view(), name="organization"),
    path("organizations/", OrganizationListView.as_view(), name="organizations"),
    path("templates/", TemplateListView.as_view(), name="templates"),
    path("datasets/<uuid:pk>/leaderboard/", LeaderboardView.as_view(), name="dataset-leaderboard"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Before the router's usage/<uuid:pk>/ (which "limits" would not match anyway).
    path("usage/limits/", UsageLimitsView.as_view(), name="usage-limits"),
    *router.urls,
]
