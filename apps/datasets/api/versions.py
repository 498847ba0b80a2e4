"""API actions of dataset versions (health report, download), mixed into the version view;
the items' files (thumbnail, canonical image); and making a new version from a dataset's."""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from apps.core.errors import Conflict, InvalidInput
from apps.core.inputs import json_nul_field, nul_message, text_value
from apps.core.views import parse_uuid
from apps.datasets import exports
from apps.datasets.api.serializers import DatasetVersionHealthSerializer
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.selectors import version_health
from apps.datasets.versions import dataset_version_derive


class AnyAccept(BaseContentNegotiation):
    """File downloads answer whatever the client accepts; errors still come back as JSON."""

    def select_parser(self, request: Any, parsers: list) -> Any:
        return parsers[0]

    def select_renderer(self, request: Any, renderers: list, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


FILE_RESPONSES = {
    (200, "image/png"): OpenApiTypes.BINARY,
    (200, "image/jpeg"): OpenApiTypes.BINARY,
    (200, "image/webp"): OpenApiTypes.BINARY,
    304: OpenApiResponse(description="Not modified (If-None-Match matched the ETag)."),
}


class VersionActions:
    @extend_schema(responses=DatasetVersionHealthSerializer)
    @action(detail=True, methods=["get"])
    def health(self, request, pk=None):
        """The health report: counts per class and split, imbalance, classes under the
        minimum, skipped files, duplicates, leakage, sizes, formats, blocking problems."""
        version = self.get_object()
        return Response(DatasetVersionHealthSerializer(version_health(version)).data)

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            (200, "text/csv"): OpenApiTypes.BINARY,
        }
    )
    @action(detail=True, methods=["get"], content_negotiation_class=AnyAccept)
    def download(self, request, pk=None):
        """The version as a streamed download: for images, a zip of the canonical PNGs under
        <label>/<name>.png with manifest.csv (file, label, split, sha256, original_name); for
        a table, its canonical CSV. CSV cells that a spreadsheet would run are neutralised."""
        return exports.version_download_response(self.get_object())


class ItemFileActions:
    @extend_schema(responses=FILE_RESPONSES)
    @action(detail=True, methods=["get"], content_negotiation_class=AnyAccept)
    def thumbnail(self, request, pk=None):
        """A small preview of the image (longest side about 200 px)."""
        return exports.item_file_response(request, self.get_object(), "thumbnail")

    @extend_schema(responses=FILE_RESPONSES)
    @action(detail=True, methods=["get"], content_negotiation_class=AnyAccept)
    def image(self, request, pk=None):
        """The image as stored: re-encoded PNG, upright, RGB."""
        return exports.item_file_response(request, self.get_object(), "image")


def _json(data: Any, field: str, expect: type) -> Any:
    raw = data.get(field)
    if raw in (None, ""):
        return None
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
    shape = '{"<item id>": "new label"}' if field == "relabel" else '{"a.jpg": "cat"}'
    if not isinstance(value, expect):
        raise InvalidInput(f"'{field}' must be a JSON object like {shape}.", field=field)
    if isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput(
            _("Each label in '%(field)s' must be text, like %(shape)s.")
            % {"field": field, "shape": shape},
            field=field,
        )
    if json_nul_field(value) is not None:
        # A form field holds the object as JSON text, where a NUL is the escape \u0000.
        raise InvalidInput(nul_message(field), field=field)
    return value


def _list(data: Any, field: str) -> list:
    if hasattr(data, "getlist"):
        values = data.getlist(field) + data.getlist(f"{field}[]")
    else:
        values = data.get(field) or []
        values = values if isinstance(values, list) else [values]
    return [v for v in values if v not in (None, "")]


def derive_arguments(*, request: Any, dataset: Dataset) -> dict[str, Any]:
    """The multipart (or JSON) body of POST datasets/{id}/versions/ as derive arguments."""
    data = request.data
    raw_base = data.get("base")
    if raw_base:
        base_id = parse_uuid(raw_base)
        base = DatasetVersion.objects.filter(dataset=dataset, pk=base_id).first()
        if base_id is None or base is None:
            raise InvalidInput(
                f"'base' must be the id of a version of '{dataset.name}'; {raw_base!r} is not.",
                field="base",
            )
    else:
        base = DatasetVersion.objects.filter(dataset=dataset, status="succeeded").first()
        if base is None:
            raise Conflict(f"'{dataset.name}' has no ready version to start from yet.")
    if not base.is_ready:
        raise Conflict(
            f"Version {base.number} is not ready ({base.get_status_display().lower()}); "
            "start from a ready version.",
        )
    remove = []
    for raw in _list(data, "remove"):
        item_id = parse_uuid(raw)
        if item_id is None:
            raise InvalidInput(f"'remove' must hold item ids; {raw!r} is not one.", field="remove")
        remove.append(item_id)
    relabel = _json(data, "relabel", dict)
    labels = _json(data, "labels", dict)
    images = request.FILES.getlist("images") + request.FILES.getlist("images[]")
    archive = request.FILES.get("archive")
    label = text_value(data, "label").strip() or None
    if not (images or archive or remove or relabel):
        raise InvalidInput(
            "Nothing would change: send images (with 'label' or 'labels'), an 'archive', "
            "item ids to 'remove', or a 'relabel' object."
        )
    return {
        "base": base,
        "add_images": images,
        "add_archive": archive,
        "remove": remove,
        "relabel": relabel,
        "add_labels": labels,
        "label": label,
    }


def version_derive(*, request: Any, dataset: Dataset, role: str) -> DatasetVersion:
    return dataset_version_derive(
        user=request.user, role=role, **derive_arguments(request=request, dataset=dataset)
    )
