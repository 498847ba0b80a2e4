"""Members and invitations over the API: managed by people (a session or HTTP Basic), never
by an API key, as API keys themselves are."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.api.views import NotByAnApiKey
from apps.accounts.authentication import ApiKeyAuthentication, ThrottledBasicAuthentication
from apps.core.api import TenantViewSet
from apps.tenants.api.serializers import (
    InvitationCreateSerializer,
    InvitationSerializer,
    MemberRoleSerializer,
    MemberSerializer,
)
from apps.tenants.models import Invitation, Membership
from apps.tenants.team import (
    invitation_create,
    invitation_resend,
    invitation_revoke,
    member_remove,
    member_role_change,
)
from apps.tenants.team_selectors import (
    invitation_get,
    invitations_all,
    invitations_pending,
    member_get,
    members_list,
)

_KEYS_REFUSED = OpenApiResponse(
    description="Called with an API key: keys cannot manage members or invitations."
)


class NoMemberManagementByKey(NotByAnApiKey):
    """A leaked key that could invite people or change roles would hand out lasting access."""

    message = _(
        "API keys cannot manage members or invitations. Log in, or send your email and "
        "password with HTTP Basic."
    )


class _PeopleOnly:
    # Key authentication stays listed so that a key is recognised and refused with a 403 that
    # says why, rather than a 401 that reads as a bad key.
    authentication_classes = [
        ApiKeyAuthentication,
        SessionAuthentication,
        ThrottledBasicAuthentication,
    ]
    permission_classes = [IsAuthenticated, NoMemberManagementByKey]


class MemberViewSet(
    _PeopleOnly,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Members of your organization. Everyone reads the list; owners and admins change a
    role (PATCH) or remove a member (DELETE); only an owner changes or removes an owner, and
    the last owner stays."""

    model = Membership
    serializer_class = MemberSerializer

    def get_queryset(self) -> Any:
        return members_list(organization=self.organization)

    def get_object(self) -> Membership:
        membership = member_get(organization=self.organization, membership_id=self.kwargs["pk"])
        if membership is None:
            raise Http404
        return membership

    @extend_schema(
        request=MemberRoleSerializer, responses={200: MemberSerializer, 403: _KEYS_REFUSED}
    )
    def partial_update(self, request: Request, pk: Any = None) -> Response:
        membership = member_role_change(
            organization=self.organization,
            actor=request.user,
            membership=self.get_object(),
            role=request.data.get("role"),
        )
        return Response(MemberSerializer(membership).data)

    def perform_destroy(self, instance: Membership) -> None:
        member_remove(organization=self.organization, actor=self.request.user, membership=instance)


class InvitationViewSet(
    _PeopleOnly,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Invitations to your organization, sent by email (owners and admins; only owners invite
    owners). The list shows open ones (pending or expired); DELETE revokes one; resend sends
    a new link with a new expiry, and the old link stops working."""

    model = Invitation
    serializer_class = InvitationSerializer

    def get_queryset(self) -> Any:
        if self.action == "list":
            return invitations_pending(organization=self.organization)
        return invitations_all(organization=self.organization)

    def get_object(self) -> Invitation:
        invitation = invitation_get(organization=self.organization, invitation_id=self.kwargs["pk"])
        if invitation is None:
            raise Http404
        return invitation

    @extend_schema(
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer, 403: _KEYS_REFUSED},
    )
    def create(self, request: Request) -> Response:
        invitation = invitation_create(
            organization=self.organization,
            actor=request.user,
            email=request.data.get("email"),
            role=request.data.get("role", "member"),
            site_url=request.build_absolute_uri("/"),
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: InvitationSerializer, 403: _KEYS_REFUSED})
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: Any = None) -> Response:
        invitation = invitation_resend(
            organization=self.organization,
            actor=request.user,
            invitation=self.get_object(),
            site_url=request.build_absolute_uri("/"),
        )
        return Response(InvitationSerializer(invitation).data)

    def perform_destroy(self, instance: Invitation) -> None:
        invitation_revoke(
            organization=self.organization, actor=self.request.user, invitation=instance
        )
