"""Writes for deployments: deploy a model version, answer a prediction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from django.conf import settings

from apps.audit.services import audit_record
from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.core.text import human_size
from apps.deployments.models import Endpoint
from apps.deployments.predictors import predictor_for
from apps.tenants.models import Organization
from apps.training.models import ModelVersion
from workers.ml.images import ImageDecodeError, decode_image

MAX_TOP_K = 20


def endpoint_create(
    *, organization: Organization, user: Any, model_version: ModelVersion, name: str = ""
) -> Endpoint:
    """Deploy a trained model version as an endpoint of the prediction API."""
    name = (name or "").strip() or f"{model_version.model_config.name} v{model_version.number}"
    if len(name) > 120:
        raise InvalidInput("The endpoint name is too long: 120 characters at most.", field="name")
    endpoint = Endpoint.unscoped.create(
        organization=organization, name=name, model_version=model_version, created_by=user
    )
    audit_record(organization=organization, actor=user, action="endpoint.create", target=endpoint)
    return endpoint


@dataclass(frozen=True)
class PredictionResult:
    predictions: list[dict[str, Any]]
    model_version_id: str
    labels: list[str]


def parse_top_k(raw: Any) -> int:
    if raw in (None, ""):
        return 3
    try:
        top_k = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"top_k must be a whole number from 1 to {MAX_TOP_K}; got {raw!r}.", field="top_k"
        )
    if not 1 <= top_k <= MAX_TOP_K:
        raise InvalidInput(f"top_k must be from 1 to {MAX_TOP_K}; got {top_k}.", field="top_k")
    return top_k


def endpoint_predict(
    *, endpoint: Endpoint, image: BinaryIO | None, top_k: Any = None
) -> PredictionResult:
    """Classify one image with the endpoint's model: top-k labels with probabilities."""
    if not endpoint.is_active:
        raise InvalidInput(
            "This endpoint is paused. Activate it before sending images.",
            code="endpoint_inactive",
            status_code=409,
        )
    k = parse_top_k(top_k)
    if image is None:
        raise InvalidInput(
            "Send the image as multipart form field 'image' (or as the raw request body with an "
            "image content type).",
            field="image",
        )
    if not hasattr(image, "read"):
        raise InvalidInput(
            "The 'image' field holds text, not a file. Upload the image file itself (a multipart "
            "file field, or the raw request body with an image content type).",
            field="image",
        )
    data = image.read(settings.LEPTON_MAX_PREDICT_BYTES + 1)
    if len(data) > settings.LEPTON_MAX_PREDICT_BYTES:
        raise PayloadTooLarge(
            f"The image is larger than {human_size(settings.LEPTON_MAX_PREDICT_BYTES)}; "
            "send a smaller one.",
            field="image",
        )
    if not data:
        raise InvalidInput("The image is empty.", field="image")
    try:
        picture = decode_image(data)
    except ImageDecodeError as exc:
        raise InvalidInput(
            f"The file is not an image the model can read: {exc.reason}. Send a JPEG, PNG, "
            "WebP, BMP, GIF or TIFF.",
            field="image",
        )
    version = endpoint.model_version
    predictor = predictor_for(file_name=version.file.name)
    predictions = predictor.predict(picture, top_k=k)
    return PredictionResult(
        predictions=[{"label": p.label, "probability": p.probability} for p in predictions],
        model_version_id=str(version.pk),
        labels=list(predictor.labels),
    )
