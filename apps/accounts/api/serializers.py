from rest_framework import serializers

from apps.accounts.models import ALL_SCOPES, ApiKey


class SignupSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    organization_name = serializers.CharField(max_length=200)


class ApiKeySerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_SCOPES),
        help_text="What the key may do: read (GET), write (change anything but predict), "
        "predict (POST endpoints/{id}/predict/).",
    )
    endpoints = serializers.ListField(
        source="endpoint_ids",
        child=serializers.UUIDField(),
        help_text="The endpoints the key may call predict on; empty: every endpoint.",
    )
    created_by = serializers.EmailField(source="created_by.email", read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "endpoints",
            "expires_at",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_SCOPES),
        required=False,
        help_text="Any of read, write, predict; left out, the key gets all three.",
    )
    endpoints = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        help_text="Endpoint ids the key may call predict on; left out, every endpoint.",
    )
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When the key stops working; left out, never."
    )


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The secret key. Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields
