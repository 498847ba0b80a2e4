from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core.api import TenantReadOnlyViewSet, TenantViewSet
from apps.core.errors import InvalidInput
from apps.datasets.api.serializers import (
    DatasetCreateSerializer,
    DatasetItemSerializer,
    DatasetSerializer,
    DatasetVersionSerializer,
)
from apps.datasets.api.tabular import TabularVersionActions
from apps.datasets.api.versions import VersionActions
from apps.datasets.models import Dataset, DatasetItem, DatasetKind, DatasetVersion, Split
from apps.datasets.services import dataset_create


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Image datasets. POST a zip of class folders to create one; ingestion runs on a worker
    and the returned version's status becomes `succeeded` (ready) or `failed`."""

    model = Dataset
    serializer_class = DatasetSerializer

    # A JSON body reaches create() without a file and gets the "attach a zip" message.
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(request=DatasetCreateSerializer, responses={202: DatasetVersionSerializer})
    def create(self, request):  # noqa: ANN001, ANN201
        upload = request.FILES.get("file")
        version = dataset_create(
            organization=self.organization,
            user=request.user,
            name=request.data.get("name", ""),
            upload=upload,
            kind=request.data.get("kind") or DatasetKind.IMAGE,
        )
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)


class DatasetVersionViewSet(TabularVersionActions, VersionActions, TenantReadOnlyViewSet):
    """Dataset versions with ingestion status, per-class counts and skipped files."""

    model = DatasetVersion
    serializer_class = DatasetVersionSerializer

    def get_queryset(self):  # noqa: ANN201
        return super().get_queryset().select_related("dataset")

    @extend_schema(
        responses=DatasetItemSerializer(many=True),
        parameters=[
            OpenApiParameter("split", str, enum=Split.values),
            OpenApiParameter("label", str),
        ],
    )
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):  # noqa: ANN001, ANN201
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
        return self.get_paginated_response(DatasetItemSerializer(page, many=True).data)
