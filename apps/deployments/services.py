"""Writes for deployments: deploy a model version, answer a prediction.

An endpoint serves what its model version was trained for: an image classifier answers an
uploaded image with ranked labels, a tabular regressor answers JSON rows with one value each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from django.conf import settings
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.errors import InvalidInput, PayloadTooLarge, ServiceError, check_may_change
from apps.core.text import human_size
from apps.deployments.models import Endpoint
from apps.deployments.predictors import AnyPredictor, predictor_for
from apps.deployments.rows import RowSchema, read_rows, row_schema
from apps.quotas.services import quota_check_predictions
from apps.tenants.models import Organization
from apps.training.models import ModelVersion
from workers.ml.checkpoint import IMAGE_CLASSIFICATION, TABULAR_REGRESSION
from workers.ml.images import ImageDecodeError, ImageTooLarge, decode_image, fitting_size
from workers.ml.predictor import Predictor
from workers.ml.tabular import TabularPredictor

logger = logging.getLogger(__name__)

MAX_TOP_K = 20
TASKS = (IMAGE_CLASSIFICATION, TABULAR_REGRESSION)
_P = TypeVar("_P", bound=AnyPredictor)


def endpoint_create(
    *, organization: Organization, user: Any, model_version: ModelVersion, name: str = ""
) -> Endpoint:
    """Deploy a trained model version (image classifier or tabular regressor) as an endpoint
    of the prediction API."""
    if model_version.task not in TASKS:
        raise InvalidInput(
            f"Model version {model_version} is a {model_version.task!r} model, which cannot be "
            f"deployed; deploy one of: {', '.join(TASKS)}.",
            field="model_version",
        )
    name = (name or "").strip() or f"{model_version.model_config.name} v{model_version.number}"
    if len(name) > 120:
        raise InvalidInput("The endpoint name is too long: 120 characters at most.", field="name")
    endpoint = Endpoint.objects.create(
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
    if endpoint.model_version.task != IMAGE_CLASSIFICATION or not endpoint.is_active:
        endpoint_check_input(endpoint=endpoint, content_type="")
    quota_check_predictions(organization_id=endpoint.organization_id)
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
        picture = decode_image(data, max_pixels=settings.LEPTON_MAX_PREDICT_IMAGE_PIXELS)
    except ImageTooLarge as exc:
        raise InvalidInput(_too_large_message(exc), code="image_too_large", field="image")
    except ImageDecodeError as exc:
        raise InvalidInput(
            f"The file is not an image the model can read: {exc.reason}. Send a JPEG, PNG, "
            "WebP, BMP, GIF or TIFF.",
            field="image",
        )
    version = endpoint.model_version
    predictor = _predictor(version, Predictor)
    predictions = predictor.predict(picture, top_k=k)
    return PredictionResult(
        predictions=[{"label": p.label, "probability": p.probability} for p in predictions],
        model_version_id=str(version.pk),
        labels=list(predictor.labels),
    )


def _too_large_message(exc: ImageTooLarge) -> str:
    width, height = fitting_size(exc.width, exc.height, exc.limit)
    return _(
        "The image is %(width)d x %(height)d pixels; an endpoint takes at most %(limit)s pixels "
        "(LEPTON_MAX_PREDICT_IMAGE_PIXELS). Resize it to at most %(fit_width)d x %(fit_height)d "
        "pixels, keeping its aspect ratio, and send it again."
    ) % {
        "width": exc.width,
        "height": exc.height,
        "limit": f"{exc.limit:,}",
        "fit_width": width,
        "fit_height": height,
    }


def is_json(content_type: str) -> bool:
    """Whether a request's Content-Type says JSON."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def endpoint_check_input(*, endpoint: Endpoint, content_type: str) -> None:
    """Refuse a call to a paused endpoint, and input of the wrong kind for its model (an image
    or a form for a regressor, JSON rows for an image classifier), saying what to send."""
    if not endpoint.is_active:
        raise InvalidInput(
            "This endpoint is paused. Activate it before sending predictions.",
            code="endpoint_inactive",
            status_code=409,
        )
    tabular = endpoint.model_version.task == TABULAR_REGRESSION
    sent_json = is_json(content_type)
    if tabular and not sent_json:
        target = endpoint.model_version.evaluation.get("target")
        what = f"predicts {target!r}" if target else "predicts a value"
        media_type = content_type.split(";", 1)[0].strip().lower()
        if not media_type:
            got = "has no body or no Content-Type"
        elif media_type.startswith("image/"):
            got = f"holds an image ({media_type})"
        elif media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            got = f"is a form ({media_type}), as for an image"
        else:
            got = f"is {media_type}"
        raise InvalidInput(
            f"This endpoint {what} from table rows sent as JSON, but the request {got}. Send "
            'Content-Type: application/json with {"rows": [{"column": value, ...}, ...]} (up '
            f'to {settings.LEPTON_MAX_PREDICT_ROWS} rows) or {{"row": {{"column": value, ...}}}}'
            ". The endpoint's page lists the columns.",
            code="wrong_input",
            field="rows",
        )
    if sent_json and not tabular:
        raise InvalidInput(
            "This endpoint classifies images; JSON rows (application/json) are for "
            "tabular-regression endpoints. Send the image as multipart form field 'image', or "
            "as the raw request body with an image content type (e.g. image/jpeg).",
            code="wrong_input",
            field="image",
        )


@dataclass(frozen=True)
class RowsPredictionResult:
    #: one {"value": float} per row, in the order the rows were sent
    predictions: list[dict[str, float]]
    model_version_id: str
    target: str


def endpoint_row_schema(*, endpoint: Endpoint) -> RowSchema:
    """The columns a regression endpoint reads, their kinds and an example row."""
    version = endpoint.model_version
    return _row_schema(version, _predictor(version, TabularPredictor))


def _row_schema(version: ModelVersion, predictor: TabularPredictor) -> RowSchema:
    # The model's own record of its inputs wins; the dataset version's schema adds which
    # numeric inputs were yes/no columns, and typical values for examples.
    return row_schema(
        features=predictor.columns,
        target=predictor.target_name,
        # As the table was when the model trained (older versions: the dataset's schema now).
        table=version.input_schema or version.model_config.dataset_version.schema,
    )


def endpoint_predict_rows(*, endpoint: Endpoint, data: Any) -> RowsPredictionResult:
    """Predict the target for JSON rows ({"rows": [...]} or {"row": {...}}) with the endpoint's
    regression model: one value per row, computed exactly as training encoded its table.

    Raises:
        InvalidInput: naming the row and the column, for a cell the table could not have held,
            an unknown column, too many rows or a body of the wrong shape.
    """
    endpoint_check_input(endpoint=endpoint, content_type="application/json")
    quota_check_predictions(organization_id=endpoint.organization_id)
    version = endpoint.model_version
    predictor = _predictor(version, TabularPredictor)
    schema = _row_schema(version, predictor)
    rows = read_rows(data, schema=schema, max_rows=settings.LEPTON_MAX_PREDICT_ROWS)
    values = predictor.predict_rows(rows)
    return RowsPredictionResult(
        predictions=[{"value": value} for value in values],
        model_version_id=str(version.pk),
        target=predictor.target_name,
    )


def _predictor(version: ModelVersion, kind: type[_P]) -> _P:
    """The loaded model of ``version``, which must be a ``kind``."""
    try:
        if not version.file.name:
            raise FileNotFoundError(f"model version {version.pk} has no model file")
        predictor = predictor_for(file_name=version.file.name)
    except (OSError, ValueError):
        logger.exception("model version %s: its model file cannot be loaded", version.pk)
        predictor = None
    if not isinstance(predictor, kind):
        raise ServiceError(
            "This endpoint's model file cannot be loaded right now. Try again later; if it "
            "keeps failing, deploy the model version again or ask an administrator.",
            code="model_unavailable",
            status_code=503,
        )
    return predictor


def endpoint_delete(*, endpoint: Endpoint, user: Any, role: str) -> str:
    """Delete an endpoint; a message saying so. Calls to it answer 404 from then on; its usage
    events stay, without the endpoint, so past usage still adds up. The model is untouched.

    Raises ServiceError (403) for a member deleting another member's endpoint.
    """
    check_may_change(
        action="delete",
        role=role,
        user=user,
        created_by_id=endpoint.created_by_id,
        what=f"'{endpoint.name}'",
    )
    name = endpoint.name
    audit_record(
        organization=endpoint.organization, actor=user, action="endpoint.delete", target=endpoint
    )
    endpoint.delete()
    return f"Deleted the endpoint '{name}': calls to it now answer 404. The model is kept."
