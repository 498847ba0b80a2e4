import io
import json
import time

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.response import Response

from apps.analytics.services import usage_record
from apps.core.api import TenantViewSet
from apps.core.errors import InvalidInput, PayloadTooLarge, ServiceError
from apps.core.text import human_size
from apps.deployments.api.serializers import (
    EndpointCreateSerializer,
    EndpointSerializer,
    ErrorSerializer,
    PredictAnyResponse,
    PredictJsonRequest,
    PredictRequestSerializer,
)
from apps.deployments.models import Endpoint
from apps.deployments.services import (
    endpoint_check_input,
    endpoint_create,
    endpoint_delete,
    endpoint_predict,
    endpoint_predict_rows,
    is_json,
)


class RawImageParser(BaseParser):
    """The request body is the image itself (Content-Type: image/...)."""

    media_type = "image/*"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read(settings.LEPTON_MAX_PREDICT_BYTES + 1) if stream else b""
        return {"image": io.BytesIO(data)}


class PredictJSONParser(BaseParser):
    """JSON rows for a regression endpoint, read with a size limit.

    NaN and Infinity are read as numbers here, so that the row check can name the row and
    column that holds one instead of refusing the whole body as unparsable.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.LEPTON_MAX_PREDICT_BYTES
        data = stream.read(limit + 1) if stream else b""
        if len(data) > limit:
            raise PayloadTooLarge(
                f"The JSON body is larger than {human_size(limit)}; send fewer rows per call.",
                field="rows",
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"The body is not UTF-8 text (byte {exc.start}); send JSON encoded as UTF-8.",
                field="rows",
            ) from None
        try:
            return json.loads(text, parse_constant=float)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, column "
                f'{exc.colno}. Send {{"rows": [{{"column": value, ...}}]}}.',
                field="rows",
            ) from None
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number, lists 10^5 deep
            raise InvalidInput(
                f"The body cannot be read as rows: {str(exc)[:100] or 'nested too deeply'}. "
                'Send {"rows": [{"column": value, ...}]}.',
                field="rows",
            ) from None


_PREDICT_DESCRIPTION = """\
Predict with the endpoint's model. What to send depends on its `task`:

- **image-classification**: the image as multipart form field `image` (with optional `top_k`,
  1-20, default 3; also as a query parameter), or as the raw request body with an image
  content type. Answers the `top_k` labels with their probabilities, most likely first.
- **tabular-regression**: JSON (`Content-Type: application/json`), either
  `{"rows": [{"column": value, ...}, ...]}` (at most `LEPTON_MAX_PREDICT_ROWS` rows, 1000 by
  default) or `{"row": {"column": value, ...}}`. Answers one `{"value": ...}` per row, in
  order, and the `target` column's name. A column left out or null is a missing value;
  an unknown column, a cell that does not fit its column (text in a numeric column, NaN,
  infinity) or too many rows answer 400 naming the row and the column.

Every call, refused ones included, is recorded as usage, except those over a rate limit
(429, counted in the cache only, so a flood of them costs no database writes). Over the
organization's predictions for the month it answers 403 `quota_exceeded`.
"""


class EndpointViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet
):
    """Deployed models. POST .../predict/ with an image (classifiers) or JSON rows
    (regressors) returns the prediction."""

    model = Endpoint
    serializer_class = EndpointSerializer
    own_json_body_actions = frozenset({"predict"})
    action_scopes = {"predict": "predict"}

    def get_queryset(self):
        related = (
            "model_version__model_config__dataset_version"
            if self.action == "predict"
            else "model_version"
        )
        return super().get_queryset().select_related(related)

    @extend_schema(
        responses={
            204: None,
            403: OpenApiResponse(description="A member deleting another member's endpoint."),
        }
    )
    def destroy(self, request, pk=None):
        """Delete the endpoint: calls to it answer 404 from then on. The model and the usage
        records are kept. Admins and owners may delete any endpoint, members those they made."""
        endpoint_delete(endpoint=self.get_object(), user=request.user, role=self.role)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=EndpointCreateSerializer, responses={201: EndpointSerializer})
    def create(self, request):
        serializer = EndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = endpoint_create(
            organization=self.organization, user=request.user, **serializer.validated_data
        )
        return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        description=_PREDICT_DESCRIPTION,
        request={
            "application/json": PredictJsonRequest,
            "multipart/form-data": PredictRequestSerializer,
            "image/*": OpenApiTypes.BINARY,
        },
        parameters=[
            OpenApiParameter(
                "top_k", int, description="Image endpoints: how many labels (1-20, default 3)."
            )
        ],
        responses={
            200: PredictAnyResponse,
            400: OpenApiResponse(ErrorSerializer, description="Input to fix; see the message."),
            404: OpenApiResponse(ErrorSerializer, description="No such endpoint."),
            403: OpenApiResponse(
                ErrorSerializer, description="The month's predictions quota is used up."
            ),
            409: OpenApiResponse(ErrorSerializer, description="The endpoint is paused."),
            413: OpenApiResponse(ErrorSerializer, description="The body is too large."),
            415: OpenApiResponse(ErrorSerializer, description="Unsupported content type."),
            429: OpenApiResponse(
                ErrorSerializer, description="Over a rate limit; see Retry-After."
            ),
            503: OpenApiResponse(ErrorSerializer, description="The model cannot be loaded."),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        parser_classes=[PredictJSONParser, MultiPartParser, FormParser, RawImageParser],
    )
    def predict(self, request, pk=None):
        endpoint = self.get_object()
        started = time.perf_counter()
        try:
            content_type = request.content_type or ""
            # Before the body is read: an image sent to a regressor (or rows to a classifier)
            # is refused with what to send instead, not with a parse error.
            endpoint_check_input(endpoint=endpoint, content_type=content_type)
            if is_json(content_type):
                rows = endpoint_predict_rows(endpoint=endpoint, data=request.data)
                body = {
                    "endpoint": str(endpoint.pk),
                    "model_version": rows.model_version_id,
                    "target": rows.target,
                    "predictions": rows.predictions,
                }
            else:
                top_k = request.query_params.get("top_k") or request.data.get("top_k")
                result = endpoint_predict(
                    endpoint=endpoint, image=request.data.get("image"), top_k=top_k
                )
                body = {
                    "endpoint": str(endpoint.pk),
                    "model_version": result.model_version_id,
                    "predictions": result.predictions,
                }
        except (ServiceError, exceptions.APIException) as exc:
            # Also a body DRF cannot parse (415, 400): every answered call is recorded below.
            response = self.handle_exception(exc)
        else:
            response = Response(body)
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
