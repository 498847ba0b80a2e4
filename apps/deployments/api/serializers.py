from rest_framework import serializers

from apps.core.fields import ScopedPrimaryKeyRelatedField
from apps.deployments.models import Endpoint
from apps.training.models import ModelVersion


class EndpointSerializer(serializers.ModelSerializer):
    predict_url = serializers.SerializerMethodField()

    class Meta:
        model = Endpoint
        fields = ["id", "name", "model_version", "is_active", "created_at", "predict_url"]
        read_only_fields = fields

    def get_predict_url(self, endpoint: Endpoint) -> str:
        return f"/api/v1/endpoints/{endpoint.pk}/predict/"


class EndpointCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    model_version = ScopedPrimaryKeyRelatedField(ModelVersion)


class PredictRequestSerializer(serializers.Serializer):
    image = serializers.FileField()
    top_k = serializers.IntegerField(required=False, min_value=1, max_value=20)


class PredictionSerializer(serializers.Serializer):
    label = serializers.CharField()
    probability = serializers.FloatField()


class PredictResponseSerializer(serializers.Serializer):
    endpoint = serializers.UUIDField()
    model_version = serializers.UUIDField()
    predictions = PredictionSerializer(many=True)
    latency_ms = serializers.FloatField()
