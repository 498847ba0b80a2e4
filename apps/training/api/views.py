from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from apps.core.api import TenantAPIView, TenantReadOnlyViewSet, TenantViewSet
from apps.core.errors import InvalidInput
from apps.datasets.models import Dataset
from apps.training.api.serializers import (
    LeaderboardSerializer,
    ModelConfigCreateSerializer,
    ModelConfigSerializer,
    ModelVersionSerializer,
    TrainingRunSerializer,
    WeightsUploadSerializer,
)
from apps.training.deletion import model_config_delete
from apps.training.models import ModelConfig, ModelVersion, TrainingRun
from apps.training.selectors import dataset_leaderboard
from apps.training.services import (
    model_config_create,
    model_config_weights_attach,
    training_run_cancel,
    training_run_start,
)
from apps.training.templates import TEMPLATES


class TemplateListView(TenantAPIView):
    """Model templates with their knobs: name, type, default, allowed range and help."""

    @extend_schema(
        responses=inline_serializer("Template", {"key": serializers.CharField()}, many=True)
    )
    def get(self, request):
        return Response([template.as_dict() for template in TEMPLATES.values()])


class ModelConfigViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """Models configured from a template on a dataset version. POST .../train/ starts a run."""

    model = ModelConfig
    serializer_class = ModelConfigSerializer

    @extend_schema(request=ModelConfigCreateSerializer, responses={201: ModelConfigSerializer})
    def create(self, request):
        serializer = ModelConfigCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        start = data.pop("start_training")
        config = model_config_create(organization=self.organization, user=request.user, **data)
        body = ModelConfigSerializer(config).data
        if start:
            run = training_run_start(model_config=config, user=request.user, role=self.role)
            body["run"] = str(run.pk)
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            204: None,
            403: OpenApiResponse(description="A member deleting another member's model."),
            409: OpenApiResponse(description="A run is queued or training, or it is deployed."),
        }
    )
    def destroy(self, request, pk=None):
        """Delete the model with its runs, trained versions and their files (its dataset is
        kept). Admins and owners may delete any model, members those they made. Refused while
        a run of it is queued or training, or while a version of it is deployed."""
        model_config_delete(model_config=self.get_object(), user=request.user, role=self.role)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=WeightsUploadSerializer, responses={200: ModelConfigSerializer})
    @action(detail=True, methods=["put"], parser_classes=[MultiPartParser])
    def weights(self, request, pk=None):
        """Upload pretrained weights (multipart field `file`) for the model's next runs."""
        config = self.get_object()
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput(
                "Send the weights file as multipart form field 'file'.", field="file"
            )
        config = model_config_weights_attach(
            model_config=config, upload=upload, user=request.user, role=self.role
        )
        return Response(ModelConfigSerializer(config).data)

    @extend_schema(request=None, responses={202: TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def train(self, request, pk=None):
        run = training_run_start(model_config=self.get_object(), user=request.user, role=self.role)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunViewSet(TenantReadOnlyViewSet):
    """Training runs: live status, progress, queue position, log tail and per-epoch metrics.

    POST .../cancel/ stops a queued or running run (409 once it has ended).
    """

    model = TrainingRun
    serializer_class = TrainingRunSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("model_version").prefetch_related("epochs")

    @extend_schema(request=None, responses={200: TrainingRunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel the run: a queued run never starts; a running one stops before its next step."""
        run = training_run_cancel(run=self.get_object(), user=request.user, role=self.role)
        return Response(TrainingRunSerializer(run).data)

    @extend_schema(responses=ModelVersionSerializer)
    @action(detail=True, methods=["get"])
    def evaluation(self, request, pk=None):
        """The held-out evaluation of the run's model version (404 until the run succeeded)."""
        run = self.get_object()
        version = ModelVersion.objects.filter(run=run).first()
        if version is None:
            return Response(
                {
                    "error": {
                        "code": "not_ready",
                        "message": f"The run has no evaluation yet (status: {run.status}).",
                    }
                },
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(ModelVersionSerializer(version).data)


class ModelVersionViewSet(TenantReadOnlyViewSet):
    """Trained model versions with their evaluation on the test split."""

    model = ModelVersion
    serializer_class = ModelVersionSerializer


class LeaderboardView(TenantAPIView):
    """Every trained model of a dataset, best first (accuracy, or R² for market data)."""

    @extend_schema(responses=LeaderboardSerializer)
    def get(self, request, pk):
        dataset = get_object_or_404(Dataset.objects.all(), pk=pk)
        return Response(LeaderboardSerializer(dataset_leaderboard(dataset)).data)
