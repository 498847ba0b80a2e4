"""The project's own pages: the dashboard that brings the feature apps together.

It lives above the apps (apps.core is a leaf that imports no feature app)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from apps.core.views import org_page
from apps.datasets.models import Dataset
from apps.deployments.models import Endpoint
from apps.training.models import TrainingRun


@org_page()
def home(request: HttpRequest) -> HttpResponse:
    context = {
        "datasets": Dataset.objects.prefetch_related("versions")[:5],
        "runs": TrainingRun.objects.select_related("model_config")[:5],
        "endpoints": Endpoint.objects.select_related("model_version__model_config")[:5],
    }
    return render(request, "core/home.html", context)


def landing(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return home(request)
    return redirect("accounts:login")
