from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from apps.core.fields import ScopedPrimaryKeyRelatedField
from apps.deployments.models import Endpoint
from apps.training.models import ModelVersion


class EndpointSerializer(serializers.ModelSerializer):
    predict_url = serializers.SerializerMethodField()
    task = serializers.CharField(
        source="model_version.task",
        read_only=True,
        help_text="image-classification: POST an image to predict_url; tabular-regression: "
        "POST JSON rows.",
    )

    class Meta:
        model = Endpoint
        fields = ["id", "name", "model_version", "task", "is_active", "created_at", "predict_url"]
        read_only_fields = fields

    def get_predict_url(self, endpoint: Endpoint) -> str:
        return f"/api/v1/endpoints/{endpoint.pk}/predict/"


class EndpointCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    model_version = ScopedPrimaryKeyRelatedField(ModelVersion)


class PredictRequestSerializer(serializers.Serializer):
    image = serializers.FileField()
    top_k = serializers.IntegerField(required=False, min_value=1, max_value=20)


_ROW_HELP = (
    "One row: column name to value. Numeric columns take numbers (or numeric text), yes/no "
    "columns true/false, categorical columns text; null or a left-out column is a missing value. "
    "Other columns of the training table (ids, the target) are ignored."
)


class PredictManyRowsSerializer(serializers.Serializer):
    rows = serializers.ListField(
        child=serializers.DictField(help_text=_ROW_HELP),
        min_length=1,
        help_text="Rows to predict, at most LEPTON_MAX_PREDICT_ROWS (1000 by default).",
    )


class PredictOneRowSerializer(serializers.Serializer):
    row = serializers.DictField(help_text=_ROW_HELP)


PredictJsonRequest = PolymorphicProxySerializer(
    component_name="PredictJson",
    serializers=[PredictManyRowsSerializer, PredictOneRowSerializer],
    resource_type_field_name=None,
)


class PredictionSerializer(serializers.Serializer):
    label = serializers.CharField()
    probability = serializers.FloatField()


class PredictResponseSerializer(serializers.Serializer):
    endpoint = serializers.UUIDField()
    model_version = serializers.UUIDField()
    predictions = PredictionSerializer(many=True)
    latency_ms = serializers.FloatField()


class ValuePredictionSerializer(serializers.Serializer):
    value = serializers.FloatField(help_text="The predicted target, in the target's units.")


class PredictRowsResponseSerializer(serializers.Serializer):
    endpoint = serializers.UUIDField()
    model_version = serializers.UUIDField()
    target = serializers.CharField(help_text="The column the model predicts.")
    predictions = ValuePredictionSerializer(many=True, help_text="One per row, in order.")
    latency_ms = serializers.FloatField()


PredictAnyResponse = PolymorphicProxySerializer(
    component_name="PredictAnyResponse",
    serializers=[PredictResponseSerializer, PredictRowsResponseSerializer],
    resource_type_field_name=None,
)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField(help_text="What was wrong and how to fix it.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Where: e.g. "rows[3].price" for a cell, "image" for the upload.',
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
