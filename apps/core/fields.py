"""Serializer fields that only ever see the active organization's objects."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.models import TenantModel


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference by id to one of the caller's own objects; any other id reads as missing."""

    default_error_messages = {
        "does_not_exist": "No object with id {pk_value} exists in your organization.",
        "incorrect_type": "Expected an id (UUID), got {data_type}.",
    }

    def __init__(self, model: type[TenantModel], **kwargs: Any) -> None:
        self.scoped_model = model
        kwargs.setdefault("queryset", model.objects)
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return self.scoped_model.objects.all()

    def to_internal_value(self, data: Any) -> Any:
        import uuid

        try:
            uuid.UUID(str(data))
        except ValueError:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)
