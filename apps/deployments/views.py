"""Endpoint pages: deploy a model version, try it from the browser."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.analytics.models import UsageEvent
from apps.core.views import org_page, parse_uuid
from apps.deployments.models import Endpoint
from apps.deployments.services import endpoint_create
from apps.training.models import ModelVersion


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
        Endpoint.objects.select_related("model_version__model_config"), pk=pk
    )
    usage = UsageEvent.objects.filter(endpoint=endpoint)[:20]
    predict_url = request.build_absolute_uri(f"/api/v1/endpoints/{endpoint.pk}/predict/")
    return render(
        request,
        "deployments/detail.html",
        {"endpoint": endpoint, "usage": usage, "predict_url": predict_url},
    )
