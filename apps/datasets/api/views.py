from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core.api import TenantReadOnlyViewSet, TenantViewSet
from apps.core.errors import InvalidInput
from apps.core.inputs import text_value
from apps.core.views import parse_uuid
from apps.datasets.api.serializers import (
    DatasetCreateSerializer,
    DatasetItemSerializer,
    DatasetSerializer,
    DatasetVersionCreateSerializer,
    DatasetVersionSerializer,
)
from apps.datasets.api.tabular import TabularVersionActions
from apps.datasets.api.versions import ItemFileActions, VersionActions, version_derive
from apps.datasets.deletion import dataset_delete
from apps.datasets.models import Dataset, DatasetItem, DatasetKind, DatasetVersion, Split
from apps.datasets.selectors import dataset_versions
from apps.datasets.services import dataset_create


class DatasetViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """Image datasets. POST a zip of class folders to create one; ingestion runs on a worker
    and the returned version's status becomes `succeeded` (ready) or `failed`."""

    model = Dataset
    serializer_class = DatasetSerializer

    # A JSON body reaches create() without a file and gets the "attach a zip" message.
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(request=DatasetCreateSerializer, responses={202: DatasetVersionSerializer})
    def create(self, request):
        upload = request.FILES.get("file")
        version = dataset_create(
            organization=self.organization,
            user=request.user,
            name=text_value(request.data, "name"),
            upload=upload,
            kind=text_value(request.data, "kind") or DatasetKind.IMAGE,
        )
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            204: None,
            403: OpenApiResponse(description="A member deleting another member's dataset."),
            409: OpenApiResponse(description="A version is being ingested, or models use it."),
        }
    )
    def destroy(self, request, pk=None):
        """Delete the dataset, its versions and items, and the files nothing else uses (an
        image another dataset also holds stays). Admins and owners may delete any dataset,
        members those they uploaded. Refused while a version is being ingested or while models
        trained on it exist."""
        dataset_delete(dataset=self.get_object(), user=request.user, role=self.role)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["GET"], responses=DatasetVersionSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": DatasetVersionCreateSerializer},
        responses={202: DatasetVersionSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def versions(self, request, pk=None):
        """GET: the dataset's versions, newest first, each with its parent and changes.
        POST: a new version made from `base` (the latest ready version if left out) plus
        `images` (with `label`, or `labels` by file name) or an `archive`, minus the items in
        `remove`, with `relabel`; it is queued like an upload and answered 202."""
        dataset = self.get_object()
        if request.method == "GET":
            versions = dataset_versions(dataset=dataset)
            return Response(DatasetVersionSerializer(versions, many=True).data)
        version = version_derive(request=request, dataset=dataset, role=self.role)
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)


class DatasetVersionViewSet(TabularVersionActions, VersionActions, TenantReadOnlyViewSet):
    """Dataset versions with ingestion status, per-class counts and skipped files."""

    model = DatasetVersion
    serializer_class = DatasetVersionSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("dataset")

    @extend_schema(
        responses=DatasetItemSerializer(many=True),
        parameters=[
            OpenApiParameter("split", str, enum=Split.values),
            OpenApiParameter("label", str),
        ],
    )
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):
        version = self.get_object()
        items = DatasetItem.objects.filter(version=version).order_by("label", "original_name")
        split = request.query_params.get("split")
        if split:
            if split not in Split.values:
                raise InvalidInput(
                    f"split must be one of {', '.join(Split.values)}; got {split!r}.", field="split"
                )
            items = items.filter(split=split)
        label = request.query_params.get("label")
        if label:
            items = items.filter(label=label)
        page = self.paginate_queryset(items)
        serializer = DatasetItemSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)


class DatasetItemViewSet(ItemFileActions, TenantReadOnlyViewSet):
    """Images of dataset versions, with links to their thumbnail and stored image."""

    model = DatasetItem
    serializer_class = DatasetItemSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("version", OpenApiTypes.UUID, description="Only this version's."),
            OpenApiParameter("split", str, enum=Split.values),
            OpenApiParameter("label", str),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        items = super().get_queryset().order_by("version", "label", "original_name", "pk")
        if self.action != "list":
            return items
        params = self.request.query_params
        if params.get("version"):
            version_id = parse_uuid(params["version"])
            if version_id is None:
                raise InvalidInput("version must be a version id.", field="version")
            items = items.filter(version_id=version_id)
        split = params.get("split")
        if split:
            if split not in Split.values:
                raise InvalidInput(
                    f"split must be one of {', '.join(Split.values)}; got {split!r}.", field="split"
                )
            items = items.filter(split=split)
        if params.get("label"):
            items = items.filter(label=params["label"])
        return items
