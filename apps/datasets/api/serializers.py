from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.datasets.models import Dataset, DatasetItem, DatasetKind, DatasetVersion


class DatasetVersionSerializer(serializers.ModelSerializer):
    ready = serializers.BooleanField(source="is_ready", read_only=True)
    labels = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "dataset",
            "number",
            "status",
            "ready",
            "progress",
            "message",
            "error",
            "source_name",
            "source_size",
            "item_count",
            "labels",
            "class_counts",
            "skipped",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class DatasetSerializer(serializers.ModelSerializer):
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ["id", "name", "kind", "description", "created_at", "latest_version"]
        read_only_fields = fields

    @extend_schema_field(DatasetVersionSerializer(allow_null=True))
    def get_latest_version(self, dataset: Dataset) -> dict | None:
        version = dataset.versions.order_by("-number").first()
        return DatasetVersionSerializer(version).data if version else None


class DatasetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=500)
    kind = serializers.ChoiceField(choices=DatasetKind.choices, default=DatasetKind.IMAGE)
    file = serializers.FileField(
        help_text="A zip archive with one folder per class: cat/a.jpg, dog/b.png, ..."
    )


class DatasetItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetItem
        fields = ["id", "original_name", "label", "split", "width", "height", "sha256"]
        read_only_fields = fields
