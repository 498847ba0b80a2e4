"""Endpoint pages: deploy a model version, see how to call it, try it from the browser."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from apps.analytics.models import UsageEvent
from apps.core.errors import ServiceError
from apps.core.views import (
    can_change,
    check_may_change_page,
    delete_on_confirm,
    org_page,
    parse_uuid,
)
from apps.deployments.models import Endpoint
from apps.deployments.services import endpoint_create, endpoint_delete, endpoint_row_schema
from apps.training.models import ModelVersion
from workers.ml.checkpoint import TABULAR_REGRESSION

KIND_NAMES = {
    "numeric": _("number"),
    "categorical": _("category (text)"),
    "boolean": _("yes/no (true or false)"),
}


@org_page()
def endpoint_list(request: HttpRequest) -> HttpResponse:
    endpoints = Endpoint.objects.select_related("model_version__model_config")
    return render(request, "deployments/list.html", {"endpoints": endpoints})


@require_POST
@org_page()
def endpoint_deploy(request: HttpRequest) -> HttpResponse:
    version_id = parse_uuid(request.POST.get("model_version"))
    version = get_object_or_404(ModelVersion.objects.all(), pk=version_id)
    endpoint = endpoint_create(
        organization=request.organization,
        user=request.user,
        model_version=version,
        name=request.POST.get("name", ""),
    )
    return redirect("deployments:detail", pk=endpoint.pk)


@org_page()
def endpoint_detail(request: HttpRequest, pk: str) -> HttpResponse:
    endpoint = get_object_or_404(
        Endpoint.objects.select_related("model_version__model_config__dataset_version"), pk=pk
    )
    usage = UsageEvent.objects.filter(endpoint=endpoint)[:20]
    predict_url = request.build_absolute_uri(f"/api/v1/endpoints/{endpoint.pk}/predict/")
    context: dict[str, Any] = {
        "endpoint": endpoint,
        "usage": usage,
        "predict_url": predict_url,
        "can_change": can_change(request, endpoint),
    }
    if endpoint.model_version.task == TABULAR_REGRESSION:
        context.update(_tabular_context(endpoint))
    return render(request, "deployments/detail.html", context)


def _form_value(example: Any) -> str:
    if isinstance(example, bool):
        return "yes" if example else "no"
    return "" if example is None else str(example)


def _tabular_context(endpoint: Endpoint) -> dict[str, Any]:
    """The columns a regression endpoint reads and a curl call with a JSON row to copy."""
    try:
        schema = endpoint_row_schema(endpoint=endpoint)
    except ServiceError as exc:
        return {"tabular": True, "model_error": exc.message}
    body = json.dumps({"rows": [schema.example_row]}, ensure_ascii=False)
    return {
        "tabular": True,
        "max_rows": settings.LEPTON_MAX_PREDICT_ROWS,
        "target": schema.target,
        "columns": [
            {
                "name": c.name,
                "kind": c.kind,
                "kind_name": KIND_NAMES.get(c.kind, c.kind),
                "example": json.dumps(c.example, ensure_ascii=False),
                # what the "Try it" form starts from: the example as a form field holds it
                "value": _form_value(c.example),
                "choices": c.choices,
            }
            for c in schema.columns
        ],
        "example_cut": len(schema.columns) > len(schema.example_row),
        # Single-quoted for the shell: a quote inside the JSON becomes '\''.
        "curl_body": "'" + body.replace("'", "'\\''") + "'",
    }


@org_page()
def endpoint_delete_page(request: HttpRequest, pk: str) -> HttpResponse:
    """POST: delete the endpoint once its name was typed to confirm; back to the list."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    endpoint = get_object_or_404(Endpoint.objects.all(), pk=pk)
    check_may_change_page(request, endpoint)
    return delete_on_confirm(
        request,
        name=endpoint.name,
        delete=lambda: endpoint_delete(endpoint=endpoint, user=request.user, role=request.role),
        back=redirect("deployments:detail", pk=endpoint.pk),
        done="deployments:list",
    )
