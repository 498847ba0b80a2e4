import io
import time

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.response import Response

from apps.analytics.services import usage_record
from apps.core.api import TenantViewSet
from apps.core.errors import ServiceError
from apps.deployments.api.serializers import (
    EndpointCreateSerializer,
    EndpointSerializer,
    PredictRequestSerializer,
    PredictResponseSerializer,
)
from apps.deployments.models import Endpoint
from apps.deployments.services import endpoint_create, endpoint_predict


class RawImageParser(BaseParser):
    """The request body is the image itself (Content-Type: image/...)."""

    media_type = "image/*"

    def parse(self, stream, media_type=None, parser_context=None):  # noqa: ANN001, ANN201
        data = stream.read(settings.LEPTON_MAX_PREDICT_BYTES + 1) if stream else b""
        return {"image": io.BytesIO(data)}


class EndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Deployed models. POST .../predict/ with an image returns the top-k labels."""

    model = Endpoint
    serializer_class = EndpointSerializer

    @extend_schema(request=EndpointCreateSerializer, responses={201: EndpointSerializer})
    def create(self, request):  # noqa: ANN001, ANN201
        serializer = EndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = endpoint_create(
            organization=self.organization, user=request.user, **serializer.validated_data
        )
        return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PredictRequestSerializer, responses={200: PredictResponseSerializer})
    @action(
        detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser, RawImageParser]
    )
    def predict(self, request, pk=None):  # noqa: ANN001, ANN201
        endpoint = self.get_object()
        started = time.perf_counter()
        try:
            top_k = request.query_params.get("top_k") or request.data.get("top_k")
            result = endpoint_predict(
                endpoint=endpoint, image=request.data.get("image"), top_k=top_k
            )
        except (ServiceError, exceptions.APIException) as exc:
            # Also a body DRF cannot parse (415, 400): every answered call is recorded below.
            response = self.handle_exception(exc)
        else:
            response = Response(
                {
                    "endpoint": str(endpoint.pk),
                    "model_version": result.model_version_id,
                    "predictions": result.predictions,
                }
            )
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status_code == 200:
            response.data["latency_ms"] = round(latency_ms, 3)
        api_key = request.auth if hasattr(request.auth, "prefix") else None
        usage_record(
            organization=self.organization,
            endpoint=endpoint,
            status_code=response.status_code,
            latency_ms=latency_ms,
            api_key=api_key,
        )
        return response
