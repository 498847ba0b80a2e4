from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    SignupSerializer,
)
from apps.accounts.authentication import (
    ApiKeyAuthentication,
    AttemptsThrottled,
    ThrottledBasicAuthentication,
)
from apps.accounts.models import ApiKey
from apps.accounts.services import (
    api_key_create,
    api_key_revoke,
    api_keys_visible,
    user_signup,
)
from apps.accounts.throttling import SIGNUP, TooManyAttempts
from apps.core.api import TenantAPIView, TenantViewSet
from apps.tenants.selectors import memberships_for_credentials

_org = inline_serializer(
    "SignupResult",
    {
        "user": inline_serializer(
            "SignupUser", {"id": serializers.UUIDField(), "email": serializers.EmailField()}
        ),
        "organization": inline_serializer(
            "SignupOrganization",
            {
                "id": serializers.UUIDField(),
                "name": serializers.CharField(),
                "slug": serializers.CharField(),
            },
        ),
    },
)


class SignupView(APIView):
    """Create an account and its organization; the new user is the organization's owner."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=SignupSerializer, responses={201: _org}, auth=[])
    def post(self, request):
        email = request.data.get("email") if isinstance(request.data, dict) else None
        try:
            SIGNUP.reserve(request, account=email if isinstance(email, str) else "")
        except TooManyAttempts as exc:
            raise AttemptsThrottled(exc) from None
        serializer = SignupSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, organization = user_signup(**serializer.validated_data)
        return Response(
            {
                "user": {"id": user.pk, "email": user.email},
                "organization": {
                    "id": organization.pk,
                    "name": organization.name,
                    "slug": organization.slug,
                },
            },
            status=status.HTTP_201_CREATED,
        )


class NotByAnApiKey(BasePermission):
    """Keys are managed by people: a leaked key that could mint keys would outlive its own
    revocation."""

    message = _(
        "API keys cannot manage keys (create, list or revoke them). Log in, or send your "
        "email and password with HTTP Basic."
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        return not isinstance(request.auth, ApiKey)


class ApiKeyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """API keys of your organization, managed by a person, never by a key: log in or send your
    email and password (HTTP Basic). Admins and owners see and revoke every key, members their
    own. DELETE revokes a key."""

    model = ApiKey
    serializer_class = ApiKeySerializer
    # Key authentication stays listed so that a key is recognised and refused with a 403 that
    # says why, rather than a 401 that reads as a bad key.
    authentication_classes = [
        ApiKeyAuthentication,
        SessionAuthentication,
        ThrottledBasicAuthentication,
    ]
    permission_classes = [IsAuthenticated, NotByAnApiKey]

    def get_queryset(self):
        return api_keys_visible(
            organization=self.organization, user=self.request.user, role=self.role
        )

    @extend_schema(
        request=ApiKeyCreateSerializer,
        responses={
            201: ApiKeyCreatedSerializer,
            403: OpenApiResponse(description="Called with an API key: keys cannot manage keys."),
        },
    )
    def create(self, request):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key, raw = api_key_create(
            organization=self.organization,
            user=request.user,
            name=data["name"],
            scopes=data.get("scopes"),
            endpoint_ids=data.get("endpoints"),
            expires_at=data.get("expires_at"),
        )
        body = ApiKeySerializer(key).data | {"key": raw}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        api_key_revoke(key=instance, actor=self.request.user)


class OrganizationView(TenantAPIView):
    """The organization your credentials act for, and your role in it."""

    @extend_schema(
        responses=inline_serializer(
            "OrganizationInfo",
            {
                "id": serializers.UUIDField(),
                "name": serializers.CharField(),
                "slug": serializers.CharField(),
                "region": serializers.CharField(),
                "storage_quota_bytes": serializers.IntegerField(allow_null=True),
                "storage_used_bytes": serializers.IntegerField(),
            },
        )
    )
    def get(self, request):
        from apps.datasets.storage import organization_storage_used
        from apps.quotas.selectors import organization_limits

        org = self.organization
        return Response(
            {
                "id": org.pk,
                "name": org.name,
                "slug": org.slug,
                "region": org.region,
                "storage_quota_bytes": organization_limits(org).storage_bytes,
                "storage_used_bytes": organization_storage_used(organization=org),
            }
        )


class OrganizationListView(TenantAPIView):
    """The organizations your credentials may act for, with your role in each; `active` marks
    the one this request acts for. An API key acts only for its own organization, so it lists
    only that one; a logged-in session (or HTTP Basic) lists every organization you belong to,
    and the header's switcher picks the one pages act for."""

    @extend_schema(
        responses=inline_serializer(
            "OrganizationMembership",
            {
                "id": serializers.UUIDField(),
                "name": serializers.CharField(),
                "slug": serializers.CharField(),
                "role": serializers.CharField(),
                "region": serializers.CharField(),
                "active": serializers.BooleanField(),
                "suspended": serializers.BooleanField(),
            },
            many=True,
        )
    )
    def get(self, request):
        memberships = memberships_for_credentials(
            user=request.user, key_organization=getattr(request.auth, "organization", None)
        )
        return Response(
            [
                {
                    "id": membership.organization.pk,
                    "name": membership.organization.name,
                    "slug": membership.organization.slug,
                    "role": membership.role,
                    "region": membership.organization.region,
                    "active": membership.organization_id == self.organization.pk,
                    "suspended": membership.organization.is_suspended,
                }
                for membership in memberships
            ]
        )
