"""The page that confirms a tabular version's columns (the form of _tabular_summary.html)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.errors import ServiceError
from apps.core.views import check_may_change_page, org_page
from apps.datasets.models import DatasetVersion
from apps.datasets.tabular import tabular_version_confirm


@require_POST
@org_page()
def tabular_confirm(request: HttpRequest, pk: str) -> HttpResponse:
    version = get_object_or_404(DatasetVersion.objects.select_related("dataset"), pk=pk)
    check_may_change_page(request, version)
    target = request.POST.get("target") or None
    changes: dict[str, dict[str, str]] = {}
    for column in version.schema.get("columns", []):
        change = {}
        for key in ("type", "role"):
            value = request.POST.get(f"{key}-{column['index']}")
            if value and value != column[key] and not (key == "role" and column["name"] == target):
                change[key] = value
        if change:
            changes[column["name"]] = change
    try:
        tabular_version_confirm(
            version=version,
            user=request.user,
            role=request.role,  # type: ignore[attr-defined]
            target=target,
            columns=changes,
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The columns are confirmed."))
    return redirect("datasets:version", pk=version.pk)
