"""Model pages: configure from a template, the live run page with its evaluation."""

from __future__ import annotations

import zlib
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from apps.core.errors import InvalidInput, ServiceError
from apps.core.jobs import JobStatus
from apps.core.views import (
    can_change,
    check_may_change_page,
    delete_on_confirm,
    org_page,
    parse_uuid,
    render_with_error,
)
from apps.datasets.models import DatasetVersion
from apps.training.deletion import model_config_delete
from apps.training.models import ModelConfig, ModelVersion, TrainingRun
from apps.training.presenters import evaluation_context
from apps.training.services import (
    model_config_create,
    model_config_weights_attach,
    training_run_cancel,
    training_run_start,
)
from apps.training.templates import TEMPLATES, template_get


@org_page()
def model_list(request: HttpRequest) -> HttpResponse:
    runs = TrainingRun.objects.select_related(
        "model_config__dataset_version__dataset", "model_version"
    )
    return render(request, "training/list.html", {"runs": runs})


@org_page()
def model_create(request: HttpRequest) -> HttpResponse:
    """The low-code form: a template, a ready dataset version of its kind, the knobs.

    ?template=key shows that template's knobs and dataset versions (the page's script swaps
    those parts in without a reload); a refused value comes back beside its field, as typed.
    """
    from apps.training.forms import knob_groups, posted_knobs

    data = request.POST if request.method == "POST" else request.GET
    ready = (
        DatasetVersion.objects.filter(status=JobStatus.SUCCEEDED)
        .select_related("dataset")
        .order_by("dataset__name", "-number")
    )
    version_id = parse_uuid(data.get("dataset_version"))
    chosen = ready.filter(pk=version_id).first() if version_id else None
    # Without a template asked for, start from one that fits the chosen (or any ready) data.
    kinds = {chosen.dataset.kind} if chosen else set(ready.values_list("dataset__kind", flat=True))
    fallback = "linear" if kinds == {"tabular"} else "leptonnet"
    template = TEMPLATES.get(data.get("template") or fallback) or TEMPLATES[fallback]
    typed = posted_knobs(template, data) if request.method == "POST" else {}
    context: dict = {
        "templates": TEMPLATES.values(),
        "template": template,
        "versions": [v for v in ready if v.dataset.kind == template.dataset_kind],
        "has_versions": bool(kinds),
        "chosen_version": chosen,
        "name": data.get("name", ""),
    }
    if request.method == "POST":
        try:
            template_get(data.get("template", ""))  # an unknown key is refused, not replaced
            if chosen is None:
                raise InvalidInput(
                    "Choose a ready dataset version to train on.", field="dataset_version"
                )
            # Weights that do not fit undo the whole configuration: nothing half-made is kept.
            with transaction.atomic():
                config = model_config_create(
                    organization=request.organization,
                    user=request.user,
                    name=data.get("name", ""),
                    template=template.key,
                    dataset_version=chosen,
                    hyperparameters=typed,
                )
                weights = request.FILES.get("weights")
                if weights is not None and template.task == "image-classification":
                    config = model_config_weights_attach(
                        model_config=config, upload=weights, user=request.user, role=request.role
                    )
                run = training_run_start(model_config=config, user=request.user, role=request.role)
        except ServiceError as exc:
            context["groups"] = knob_groups(template, typed, exc)
            return render_with_error(request, "training/create.html", context, exc)
        return redirect("training:run", pk=run.pk)
    context["groups"] = knob_groups(template, typed)
    return render(request, "training/create.html", context)


@org_page()
def run_detail(request: HttpRequest, pk: str) -> HttpResponse:
    """The run page, every value formatted here. While the run can change, its live part asks
    for ?fragment=live about once a second (htmx) and is replaced by the answer; without
    JavaScript the page shows the values as of its loading. ?fragment=curves and
    ?fragment=evaluation return those parts alone."""
    run = get_object_or_404(
        TrainingRun.objects.select_related("model_config__dataset_version__dataset"), pk=pk
    )
    fragment = request.GET.get("fragment")
    if fragment == "live":
        return _run_poll(request, run)
    context = _curves_context(run)
    if fragment == "curves":
        return render(request, "training/_curves.html", context)
    context |= _evaluation_context(run)
    if fragment == "evaluation":
        return render(request, "training/_evaluation.html", context)
    template = TEMPLATES.get(run.model_config.template)
    labels = {k.name: k.label for k in template.knobs} if template else {}
    context |= _live_context(run, epochs=context["curve_epochs"])
    context |= {
        "template": template,
        "settings": [(labels.get(k, k), v) for k, v in run.hyperparameters.items()],
        "can_change": can_change(request, run),
        "can_change_model": can_change(request, run.model_config),
    }
    return render(request, "training/run.html", context)


def _run_poll(request: HttpRequest, run: TrainingRun) -> HttpResponse:
    """The live part, plus whatever else changed since the copy the page shows: its URL names
    that copy's epoch count and log, so an unchanged log or curve is not sent again (a reader
    selecting log text keeps the selection)."""
    epochs = run.epochs.count()
    context = _live_context(run, epochs=epochs)
    context["log_changed"] = request.GET.get("log") != context["log_mark"]
    # Once finished the curves come once more: the final history replaces per-epoch reports.
    context["curves_changed"] = run.is_finished or request.GET.get("epochs") != str(epochs)
    if context["curves_changed"]:
        context |= _curves_context(run)
    if run.is_finished:
        context |= _evaluation_context(run)
    return render(request, "training/_run_poll.html", context)


def _live_context(run: TrainingRun, *, epochs: int) -> dict[str, Any]:
    from apps.training.selectors import run_log_tail, run_queue_position

    log_text = "\n".join(run_log_tail(run))
    log_mark = format(zlib.crc32(log_text.encode()), "x")
    query = urlencode({"fragment": "live", "epochs": epochs, "log": log_mark})
    return {
        "run": run,
        "tabular": run.model_config.dataset_version.dataset.kind == "tabular",
        "queue_position": run_queue_position(run),
        "log_text": log_text,
        "log_mark": log_mark,
        "live_url": f"{reverse('training:run', kwargs={'pk': run.pk})}?{query}",
    }


def _curves_context(run: TrainingRun) -> dict[str, Any]:
    from apps.training.curves import run_charts

    epochs = list(run.epochs.all())
    tabular = run.model_config.dataset_version.dataset.kind == "tabular"
    return {
        "run": run,
        "charts": run_charts(epochs, total_epochs=run.total_epochs, classification=not tabular),
        "curve_epochs": len(epochs),
    }


def _evaluation_context(run: TrainingRun) -> dict[str, Any]:
    model_version = ModelVersion.objects.filter(run=run).first()
    context: dict[str, Any] = {"run": run, "model_version": model_version}
    if model_version:
        context |= evaluation_context(model_version)
    return context


@org_page()
def config_retrain(request: HttpRequest, pk: str) -> HttpResponse:
    config = get_object_or_404(ModelConfig.objects.all(), pk=pk)
    if request.method != "POST":
        return redirect("training:list")
    check_may_change_page(request, config)
    try:
        run = training_run_start(model_config=config, user=request.user, role=request.role)
    except ServiceError as exc:  # over a quota, or the dataset cannot be trained on
        from django.contrib import messages

        messages.error(request, exc.message)
        return redirect("training:list")
    return redirect("training:run", pk=run.pk)


@org_page()
def run_cancel(request: HttpRequest, pk: str) -> HttpResponse:
    run = get_object_or_404(TrainingRun.objects.all(), pk=pk)
    if request.method == "POST":
        check_may_change_page(request, run)
        try:
            training_run_cancel(run=run, user=request.user, role=request.role)
        except ServiceError as exc:
            messages.error(request, exc.message)
    return redirect("training:run", pk=run.pk)


@org_page()
def dataset_leaderboard_page(request: HttpRequest, pk: str) -> HttpResponse:
    """Every model trained on a dataset, side by side, best first."""
    # Imported here so this page stays one self-contained block of the module.
    from apps.datasets.models import Dataset
    from apps.training.presenters import leaderboard_context
    from apps.training.selectors import dataset_leaderboard

    dataset = get_object_or_404(Dataset.objects.all(), pk=pk)
    latest = dataset.versions.order_by("-number").first()
    context = {"dataset": dataset, "latest_version": latest}
    context |= leaderboard_context(dataset_leaderboard(dataset))
    return render(request, "training/leaderboard.html", context)


@org_page()
def model_delete(request: HttpRequest, pk: str) -> HttpResponse:
    """POST: delete the model once its name was typed to confirm; back to the list."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    config = get_object_or_404(ModelConfig.objects.all(), pk=pk)
    check_may_change_page(request, config)
    latest = config.runs.order_by("-created_at").first()
    back = redirect("training:run", pk=latest.pk) if latest else redirect("training:list")
    return delete_on_confirm(
        request,
        name=config.name,
        delete=lambda: model_config_delete(
            model_config=config, user=request.user, role=request.role
        ),
        back=back,
        done="training:list",
    )
