"""Admin bases: platform staff see every tenant, change only what services do not own.

Job rows and event rows are written by the portal's services and workers: a hand edit of a
status, a lease or an attempt count would race a running worker, and a hand-made row would
skip the checks and the audit entry its service writes. Their admins are view-only. Rows that
own stored files are deleted through their deletion service, which removes the files and
refuses while a job still works on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import DurationField, ExpressionWrapper, F
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ServiceError
from apps.core.job_registry import job_kind_for_model
from apps.core.jobs import JobModel, JobStatus
from apps.core.models import TenantModel
from apps.core.scoping import dangerously_all_tenants
from apps.core.text import human_duration, human_ms, human_percent, human_size, parse_size

# --- humanized columns -----------------------------------------------------------------------


def humanized(
    field: str, description: Any, format_value: Callable[[Any], str]
) -> Callable[[Any, Any], str]:
    """An admin column (or read-only field) showing `field` through `format_value`, sorted by
    the raw value; None shows as the admin's empty-value dash."""

    @admin.display(description=description, ordering=field)
    def show(model_admin: Any, obj: Any) -> str:
        value = getattr(obj, field, None)  # None on an add page's unsaved row
        return model_admin.get_empty_value_display() if value is None else format_value(value)

    return show


def size_display(field: str, description: Any) -> Callable[[Any, Any], str]:
    return humanized(field, description, human_size)


def percent_display(field: str, description: Any) -> Callable[[Any, Any], str]:
    return humanized(field, description, human_percent)


def ms_display(field: str, description: Any) -> Callable[[Any, Any], str]:
    return humanized(field, description, human_ms)


def duration_display(field: str, description: Any) -> Callable[[Any, Any], str]:
    return humanized(field, description, human_duration)


def stored_name_display(field: str, description: Any) -> Callable[[Any, Any], str]:
    """A stored file's name as text: the admin's link would point at storage that the portal
    does not serve (customers' files are read through their own pages only)."""
    return humanized(field, description, lambda stored: stored.name)


class SizeField(forms.Field):
    """A byte count typed as people write it ("5 GB", "512 MB", or plain bytes)."""

    widget = forms.TextInput

    def prepare_value(self, value: Any) -> Any:
        # Shown humanized only when that reads back exactly: saving the form unchanged must
        # never round a quota.
        if isinstance(value, int) and parse_size(human_size(value)) == value:
            return human_size(value)
        return value

    def to_python(self, value: Any) -> int | None:
        text = "" if value in self.empty_values else str(value).strip()
        if not text:
            return None
        try:
            return parse_size(text)
        except ValueError as error:
            raise forms.ValidationError(str(error), code="invalid") from error

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return initial != self.to_python(data)
        except forms.ValidationError:
            return True


# --- permissions -----------------------------------------------------------------------------


class ViewOnlyMixin:
    """Staff read these rows; only the portal's services make, change or delete them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TenantModelAdmin(admin.ModelAdmin):
    """Runs each admin view in the platform-wide scope, rendered inside it.

    Django builds foreign-key choices and validates through the default (scoped) manager; in
    the admin, which only platform staff reach, that manager must see every organization.
    """

    list_select_related = ["organization"]

    def _all_tenants(self, view: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with dangerously_all_tenants():
            response = view(*args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            return response

    def changelist_view(self, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._all_tenants(super().changelist_view, *args, **kwargs)

    def changeform_view(self, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._all_tenants(super().changeform_view, *args, **kwargs)

    def delete_view(self, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._all_tenants(super().delete_view, *args, **kwargs)

    def history_view(self, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._all_tenants(super().history_view, *args, **kwargs)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = self.model.all_tenants.get_queryset()
        return queryset.select_related(*(self.list_select_related or ["organization"]))


class ServiceDeleteAdmin(TenantModelAdmin):
    """Deletes through the model's deletion service, never with a bare cascade.

    The confirmation page is Django's (what goes with the row); the deletion itself is the
    service's: it removes the stored files nothing else uses, refuses while a job works on the
    row, and writes the audit entry. A refusal comes back as the service's message.
    """

    def delete_with_service(self, request: HttpRequest, obj: Any) -> str:
        """Delete `obj` through its service; the message to show. Raises ServiceError."""
        raise NotImplementedError

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The bulk action deletes with a cascade and reports success whatever happened.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        # The service deletes the view-only rows that go with this one: no separate permission.
        deleted, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, model_count, set(), protected

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if request.method != "POST":
            return super().delete_view(request, object_id, extra_context)
        return self._all_tenants(self._delete_through_service, request, object_id)

    def _delete_through_service(self, request: HttpRequest, object_id: str) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if not self.has_delete_permission(request, obj):
            raise PermissionDenied
        info = self.opts.app_label, self.opts.model_name
        if obj is None:  # deleted meanwhile, or never there
            return HttpResponseRedirect(reverse("admin:{}_{}_changelist".format(*info)))
        try:
            with transaction.atomic():
                # Logged first (the row is gone after), rolled back with a refused deletion.
                self.log_deletions(request, self.get_queryset(request).filter(pk=obj.pk))
                message = self.delete_with_service(request, obj)
        except (ServiceError, models.ProtectedError, models.RestrictedError) as error:
            self.message_user(request, getattr(error, "message", str(error)), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:{}_{}_changelist".format(*info)))


# --- jobs ------------------------------------------------------------------------------------


def _job_fields() -> list[str]:
    """The job layer's fields in the order JobModel declares them, humanized, then the job's
    kind and run time: a field the job layer adds shows up here without a change."""
    tenant = {field.name for field in TenantModel._meta.local_fields}
    names = [f.name for f in JobModel._meta.local_fields if f.name not in tenant]
    shown = {"progress": "progress_text", "attempts": "attempts_text"}
    return [shown.get(name, name) for name in names] + ["kind", "run_time"]


class JobAdmin(ViewOnlyMixin, TenantModelAdmin):
    """A job row (apps.core.jobs.JobModel): its state is the workers' and services' to write."""

    #: the job layer's fields as a fieldset, for subclasses' `fieldsets`
    job_fieldset: Any = (_("Job"), {"fields": _job_fields()})
    list_filter = ["status"]

    progress_text = percent_display("progress", _("progress"))

    @admin.display(description=_("kind"))
    def kind(self, obj: Any) -> str:
        """The registered kind (apps.core.job_registry): its task and queue."""
        kind = job_kind_for_model(type(obj))
        if kind is None:
            return self.get_empty_value_display()
        queue = getattr(obj, kind.queue_field) if kind.queue_field else kind.queue
        return f"{kind.name} ({kind.task}, queue {queue})"

    @admin.display(description=_("attempts"), ordering="attempts")
    def attempts_text(self, obj: Any) -> str:
        """How many times a worker claimed it, of the most it may before the job fails."""
        kind = job_kind_for_model(type(obj))
        if kind is None:
            return str(obj.attempts)
        return _("%(n)d of %(max)d") % {"n": obj.attempts, "max": kind.max_attempts}

    @admin.display(
        description=_("run time"),
        ordering=ExpressionWrapper(
            F("finished_at") - F("started_at"), output_field=DurationField()
        ),
    )
    def run_time(self, obj: Any) -> str:
        """From the first claim to the end, or until now while it runs (a stuck job shows)."""
        end = obj.finished_at or (timezone.now() if obj.status == JobStatus.RUNNING else None)
        if obj.started_at is None or end is None:
            return self.get_empty_value_display()
        return human_duration((end - obj.started_at).total_seconds())


def preformatted(text: str) -> str:
    """A log or traceback shown with its line breaks and columns kept."""
    return format_html("<pre>{}</pre>", text) if text else ""


def table(headers: list[Any], rows: list[list[Any]]) -> str:
    """A small read-only table inside a change page (a job's epochs, say), escaped."""
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
