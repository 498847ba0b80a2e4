"""Dataset pages: list + upload, version detail with live ingestion status."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from apps.core.errors import ServiceError
from apps.core.views import org_page, render_with_error
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.services import dataset_create


@org_page()
def dataset_list(request: HttpRequest) -> HttpResponse:
    context: dict = {
        "datasets": Dataset.objects.prefetch_related("versions"),
        "values": {},
    }
    if request.method == "POST":
        try:
            version = dataset_create(
                organization=request.organization,
                user=request.user,
                name=request.POST.get("name", ""),
                upload=request.FILES.get("file"),
            )
        except ServiceError as exc:
            context["values"] = request.POST
            return render_with_error(request, "datasets/list.html", context, exc)
        return redirect("datasets:version", pk=version.pk)
    return render(request, "datasets/list.html", context)


@org_page()
def version_detail(request: HttpRequest, pk: str) -> HttpResponse:
    version = get_object_or_404(DatasetVersion.objects.select_related("dataset"), pk=pk)
    template = (
        "datasets/_version_summary.html"
        if request.GET.get("fragment") == "summary"
        else "datasets/version.html"
    )
    return render(request, template, {"version": version})
