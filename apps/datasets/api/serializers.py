from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.datasets.models import Dataset, DatasetItem, DatasetKind, DatasetVersion
from apps.datasets.selectors import changes_public


class VersionChangesSerializer(serializers.Serializer):
    base = serializers.IntegerField(required=False, help_text="The number of the parent version.")
    added = serializers.IntegerField(required=False)
    removed = serializers.IntegerField(required=False)
    relabelled = serializers.IntegerField(required=False)
    archive = serializers.CharField(required=False, help_text="The added archive's name.")


class DatasetVersionSerializer(serializers.ModelSerializer):
    ready = serializers.BooleanField(source="is_ready", read_only=True)
    labels = serializers.ListField(child=serializers.CharField(), read_only=True)
    changes = serializers.SerializerMethodField(
        help_text="What a version derived from `parent` changed; empty for an upload."
    )

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
            "parent",
            "changes",
            "source_kind",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(VersionChangesSerializer)
    def get_changes(self, version: DatasetVersion) -> dict:
        return changes_public(version.changes)


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
    thumbnail_url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetItem
        fields = [
            "id",
            "version",
            "original_name",
            "label",
            "split",
            "width",
            "height",
            "sha256",
            "original_format",
            "original_bytes",
            "thumbnail_url",
            "image_url",
        ]
        read_only_fields = fields

    def _url(self, name: str, item: DatasetItem) -> str:
        path = reverse(name, kwargs={"pk": item.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, item: DatasetItem) -> str:
        return self._url("api:dataset-item-thumbnail", item)

    @extend_schema_field(OpenApiTypes.URI)
    def get_image_url(self, item: DatasetItem) -> str:
        return self._url("api:dataset-item-image", item)


class SplitCountsSerializer(serializers.Serializer):
    train = serializers.IntegerField()
    validation = serializers.IntegerField()
    test = serializers.IntegerField()
    total = serializers.IntegerField()


class SameImageSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    paths = serializers.ListField(child=serializers.CharField())
    splits = serializers.ListField(child=serializers.CharField(), required=False)


class SizeStatsSerializer(serializers.Serializer):
    min = serializers.IntegerField()
    median = serializers.FloatField()
    max = serializers.IntegerField()


class SizeBucketSerializer(serializers.Serializer):
    bucket = serializers.CharField(help_text="Longest side in pixels, e.g. '≤64'.")
    count = serializers.IntegerField()


class SizesSerializer(serializers.Serializer):
    width = SizeStatsSerializer(required=False)
    height = SizeStatsSerializer(required=False)
    histogram = SizeBucketSerializer(many=True, required=False)


class ProblemSerializer(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.ChoiceField(choices=["blocking", "warning"])
    message = serializers.CharField()
    fix = serializers.CharField(required=False, help_text="How to fix it, when known.")


class SkippedFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    reason = serializers.CharField()


class DatasetVersionHealthSerializer(serializers.Serializer):
    """A version's health report: what would ruin training, found before any is spent."""

    classes = serializers.DictField(
        child=SplitCountsSerializer(), help_text="Images per class and split."
    )
    imbalance_ratio = serializers.FloatField(
        allow_null=True, help_text="Largest class over smallest class."
    )
    min_per_class = serializers.IntegerField(allow_null=True)
    small_classes = serializers.ListField(child=serializers.CharField())
    duplicates = SameImageSerializer(many=True, help_text="Identical images under several names.")
    leakage = SameImageSerializer(many=True, help_text="Identical images in several splits.")
    sizes = SizesSerializer()
    formats = serializers.DictField(
        child=serializers.IntegerField(), help_text="Images per uploaded format."
    )
    skipped = serializers.IntegerField(help_text="How many files were skipped.")
    skipped_files = SkippedFileSerializer(many=True)
    problems = ProblemSerializer(many=True)
    trainable = serializers.BooleanField(help_text="False while a blocking problem remains.")


class DatasetVersionCreateSerializer(serializers.Serializer):
    """A new version: the base version plus additions, minus removals, with relabels."""

    base = serializers.UUIDField(
        required=False, help_text="The version to start from; the latest ready one if left out."
    )
    images = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="Loose images to add."
    )
    label = serializers.CharField(required=False, help_text="The label of every added image.")
    labels = serializers.JSONField(
        required=False, help_text='A label per added file name: {"a.jpg": "cat", ...}.'
    )
    archive = serializers.FileField(
        required=False, help_text="An archive of class folders whose images are added."
    )
    remove = serializers.ListField(
        child=serializers.UUIDField(), required=False, help_text="Ids of items to leave out."
    )
    relabel = serializers.JSONField(
        required=False, help_text='New labels by item id: {"<item id>": "dog", ...}.'
    )
