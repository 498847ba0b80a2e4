from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.tenants.models import Invitation, Membership, Role


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.UUIDField(source="user.pk", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user_id", "email", "role", "joined_at"]
        read_only_fields = fields


class MemberRoleSerializer(serializers.Serializer):
    """Documents PATCH members/{id}/; the service checks the value and who may set it."""

    role = serializers.ChoiceField(choices=Role.choices, help_text=_("The member's new role."))


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, default=None)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "last_sent_at",
            "accepted_at",
            "revoked_at",
        ]
        read_only_fields = fields

    def get_status(self, invitation: Invitation) -> str:
        """pending, expired, accepted or revoked."""
        if invitation.accepted_at is not None:
            return "accepted"
        if invitation.revoked_at is not None:
            return "revoked"
        return "expired" if invitation.is_expired else "pending"


class InvitationCreateSerializer(serializers.Serializer):
    """Documents POST invitations/; the service checks the values and who may send them."""

    email = serializers.EmailField(help_text=_("Whom to invite; they get the link by email."))
    role = serializers.ChoiceField(
        choices=Role.choices, default=Role.MEMBER, help_text=_("Their role once they join.")
    )
