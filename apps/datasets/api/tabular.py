"""API actions of tabular dataset versions (schema confirmation, preview), mixed into the version
view: ``POST dataset-versions/{id}/confirm/`` and ``GET dataset-versions/{id}/table/?page=``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import InvalidInput
from apps.datasets.models import DatasetVersion
from apps.datasets.tabular import ROLES, TYPES, tabular_page, tabular_version_confirm


class ColumnChoiceSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=TYPES, required=False)
    role = serializers.ChoiceField(choices=ROLES, required=False)


class TabularConfirmSerializer(serializers.Serializer):
    target = serializers.CharField(
        required=False, help_text="The numeric column to predict; the detected one when left out."
    )
    columns = serializers.DictField(
        child=ColumnChoiceSerializer(),
        required=False,
        help_text='Changes by column name, e.g. {"region": {"type": "categorical"}, '
        '"iso": {"role": "ignore"}}.',
    )


class TabularSchemaSerializer(serializers.ModelSerializer):
    """What was detected in the table (see apps.datasets.tabular for the shape of each part)."""

    schema = serializers.JSONField(read_only=True)
    health = serializers.JSONField(read_only=True)

    class Meta:
        model = DatasetVersion
        fields = ["id", "row_count", "schema", "health", "confirmed_at"]
        read_only_fields = fields


class TabularPageSerializer(TabularSchemaSerializer):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    page_size = serializers.IntegerField()
    columns = serializers.ListField(
        child=serializers.CharField(), help_text="The header; the last column is __split."
    )
    rows = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))

    class Meta(TabularSchemaSerializer.Meta):
        fields = [*TabularSchemaSerializer.Meta.fields, "count", "page", "pages", "page_size"]
        fields += ["columns", "rows"]
        read_only_fields = fields


class TabularVersionActions:
    """Mixed into DatasetVersionViewSet: get_object() is scoped, so another tenant gets 404."""

    @extend_schema(request=TabularConfirmSerializer, responses={200: TabularSchemaSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str | None = None) -> Response:
        version = self.get_object()  # type: ignore[attr-defined]
        body = TabularConfirmSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = tabular_version_confirm(
            version=version,
            user=request.user,
            role=self.role,  # type: ignore[attr-defined]
            target=body.validated_data.get("target"),
            columns=body.validated_data.get("columns"),
        )
        return Response(TabularSchemaSerializer(version).data)

    @extend_schema(
        responses=TabularPageSerializer,
        parameters=[OpenApiParameter("page", int, description="1-based; 50 rows a page")],
    )
    @action(detail=True, methods=["get"])
    def table(self, request: Request, pk: str | None = None) -> Response:
        version = self.get_object()  # type: ignore[attr-defined]
        raw = request.query_params.get("page", "1")
        try:
            number = int(raw)
        except ValueError:
            raise InvalidInput(f"page must be a whole number; got {raw!r}.", field="page") from None
        page = tabular_page(version, page=number)
        return Response(TabularPageSerializer({**page, **_schema_fields(version)}).data)


def _schema_fields(version: DatasetVersion) -> dict:
    return {name: getattr(version, name) for name in TabularSchemaSerializer.Meta.fields}
