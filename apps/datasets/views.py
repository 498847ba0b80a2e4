"""Dataset pages: list + upload, a version's health report, its gallery, new versions, downloads.

Every page runs in the organization's scope (@org_page); another organization's version or
item is absent from the scoped querysets and answers 404 like a missing one.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.translation import gettext as _

from apps.core.errors import InvalidInput, ServiceError
from apps.core.views import (
    can_change,
    check_may_change_page,
    delete_on_confirm,
    org_page,
    parse_uuid,
    render_with_error,
)
from apps.datasets import exports, selectors
from apps.datasets.deletion import dataset_delete
from apps.datasets.models import Dataset, DatasetItem, DatasetKind, DatasetVersion, Split
from apps.datasets.services import dataset_create
from apps.datasets.versions import dataset_version_derive

TABULAR_SUMMARY = "datasets/_tabular_summary.html"


@org_page()
def dataset_list(request: HttpRequest) -> HttpResponse:
    context: dict = {
        "datasets": Dataset.objects.prefetch_related("versions"),
        "values": {},
        "kinds": DatasetKind.choices,
    }
    if request.method == "POST":
        try:
            version = dataset_create(
                organization=request.organization,
                user=request.user,
                name=request.POST.get("name", ""),
                upload=request.FILES.get("file"),
                kind=request.POST.get("kind") or DatasetKind.IMAGE,
            )
        except ServiceError as exc:
            context["values"] = request.POST
            return render_with_error(request, "datasets/list.html", context, exc)
        return redirect("datasets:version", pk=version.pk)
    return render(request, "datasets/list.html", context)


@org_page()
def dataset_delete_page(request: HttpRequest, pk: str) -> HttpResponse:
    """POST: delete the dataset once its name was typed to confirm; back to the list."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    dataset = get_object_or_404(Dataset.objects.all(), pk=pk)
    check_may_change_page(request, dataset)
    latest = dataset.versions.order_by("-number").first()
    back = redirect("datasets:version", pk=latest.pk) if latest else redirect("datasets:list")
    return delete_on_confirm(
        request,
        name=dataset.name,
        delete=lambda: (
            dataset_delete(dataset=dataset, user=request.user, role=request.role).message
        ),
        back=back,
        done="datasets:list",
    )


def _version(pk: Any) -> DatasetVersion:
    return get_object_or_404(DatasetVersion.objects.select_related("dataset", "parent"), pk=pk)


def _template_exists(name: str) -> bool:
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return False
    return True


def version_context(version: DatasetVersion, request: HttpRequest) -> dict[str, Any]:
    """What the version page and its live fragment show: the health report and its charts, and
    whether the visitor may change the dataset (new versions, confirming columns, deleting)."""
    health = selectors.version_health(version)
    is_tabular = version.dataset.kind == DatasetKind.TABULAR
    return {
        "version": version,
        "health": health,
        "blocking": [p for p in health["problems"] if p["severity"] == "blocking"],
        "warnings": [p for p in health["problems"] if p["severity"] != "blocking"],
        "chart": selectors.class_chart(health["classes"], health["small_classes"]),
        "histogram": selectors.size_histogram(health["sizes"]),
        "is_tabular": is_tabular,
        "tabular_summary": TABULAR_SUMMARY
        if is_tabular and _template_exists(TABULAR_SUMMARY)
        else None,
        "labels": list(health["classes"]),
        "change_summary": selectors.changes_summary(version.changes),
        "versions": selectors.dataset_versions(dataset=version.dataset),
        "can_change": can_change(request, version),
    }


@org_page()
def version_detail(request: HttpRequest, pk: str) -> HttpResponse:
    version = _version(pk)
    if request.GET.get("fragment") == "live" and not version.is_finished:
        # Polled every second while ingesting: the report is not built until it has ended.
        return render(request, "datasets/_version_poll.html", {"version": version})
    context = version_context(version, request)
    if request.GET.get("fragment") == "live":
        return render(request, "datasets/_version_poll.html", context)
    if request.GET.get("fragment") == "summary":
        return render(request, "datasets/_version_summary.html", context)
    return render(request, "datasets/version.html", context)


@org_page()
def version_gallery(request: HttpRequest, pk: str) -> HttpResponse:
    version = _version(pk)
    filters = selectors.gallery_filter(version=version, params=request.GET)
    page = selectors.gallery_page(version=version, filters=filters, number=request.GET.get("page"))
    context = {
        "version": version,
        "page": page,
        "filters": filters,
        "labels": version.labels,
        "splits": Split.choices,
        "can_change": can_change(request, version),
    }
    return render(request, "datasets/gallery.html", context)


@org_page()
def version_download(request: HttpRequest, pk: str) -> HttpResponse:
    version = _version(pk)
    try:
        return exports.version_download_response(version)
    except ServiceError as exc:
        return render_with_error(
            request, "datasets/version.html", version_context(version, request), exc
        )


def _derive_arguments(request: HttpRequest) -> dict[str, Any]:
    """The page forms' fields as dataset_version_derive's arguments.

    The version page's form adds images (with one label) or an archive; the gallery's form acts
    on the ticked items: `action` "remove" drops them, "relabel" gives them `new_label`.
    """
    selected = []
    for raw in request.POST.getlist("selected"):
        item_id = parse_uuid(raw)
        if item_id is None:
            raise InvalidInput(_("'%(value)s' is not an item id.") % {"value": raw})
        selected.append(item_id)
    action = request.POST.get("action", "add")
    arguments: dict[str, Any] = {
        "add_images": request.FILES.getlist("images"),
        "add_archive": request.FILES.get("archive"),
        "label": (request.POST.get("label") or "").strip() or None,
        "remove": (),
        "relabel": None,
    }
    if action in ("remove", "relabel") and not selected:
        raise InvalidInput(_("Tick the images to change first."), field="selected")
    if action == "remove":
        arguments["remove"] = selected
    elif action == "relabel":
        new_label = (request.POST.get("new_label") or "").strip()
        if not new_label:
            raise InvalidInput(_("Choose or type the new label."), field="new_label")
        arguments["relabel"] = {str(item_id): new_label for item_id in selected}
    elif not arguments["add_images"] and not arguments["add_archive"]:
        raise InvalidInput(
            _("Choose images (or an archive of class folders) to add to the new version."),
            field="images",
        )
    return arguments


@org_page()
def version_derive(request: HttpRequest, pk: str) -> HttpResponse:
    version = _version(pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    check_may_change_page(request, version)
    try:
        new = dataset_version_derive(
            base=version, user=request.user, role=request.role, **_derive_arguments(request)
        )
    except ServiceError as exc:
        context = version_context(version, request)
        context["derive_values"] = request.POST
        return render_with_error(request, "datasets/version.html", context, exc)
    return redirect("datasets:version", pk=new.pk)


def _item(pk: Any) -> DatasetItem:
    return get_object_or_404(DatasetItem.objects.only(*_ITEM_FIELDS), pk=pk)


_ITEM_FIELDS = ("id", "organization_id", "original_name", "sha256")
_ITEM_FIELDS += ("file", "file_offset", "file_length")
_ITEM_FIELDS += ("thumbnail", "thumbnail_offset", "thumbnail_length")


@org_page()
def item_thumbnail(request: HttpRequest, pk: str) -> HttpResponse:
    return exports.item_file_response(request, _item(pk), "thumbnail")


@org_page()
def item_image(request: HttpRequest, pk: str) -> HttpResponse:
    return exports.item_file_response(request, _item(pk), "image")
