"""The one base for every API view: it resolves the organization, checks the role, sets the scope.

Another tenant's object is simply absent from the scoped querysets, so it answers 404 exactly
like a missing one. tests/apps/core/test_api_isolation.py walks every route to prove it.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core import scoping
from apps.core.errors import ServiceError, check_may_change
from apps.core.inputs import error_body, is_json, json_kind
from apps.core.permissions import NotInTable, Rule, owner_id, refusal_message, rule_for
from apps.tenants.models import Organization, Role
from apps.tenants.refusal import OrganizationSuspended
from apps.tenants.selectors import organization_for_request

#: scopes an API key may hold that the base view derives from the method (apps.accounts.Scope
#: lists them all, with predict)
SCOPE_READ = "read"
SCOPE_WRITE = "write"


class TenantScopedMixin:
    """Mixed into every API view: after authentication, activate the caller's organization."""

    #: an extra floor on the role, above the permission table's rule (apps/core/permissions.py
    #: decides; this is only ever stricter). API keys act with the role of the member who made
    #: them.
    required_role: str | None = None
    organization: Organization
    #: the caller's role in the organization
    role: str
    #: the permission table's rule for this request's route and method (None: the method is
    #: not handled here, and DRF answers 405)
    permission_rule: Rule | None = None
    #: actions that read and check their JSON body themselves (predict takes an array of rows,
    #: under its own size cap, and records a usage event for every refusal)
    own_json_body_actions: frozenset[str] = frozenset()
    #: the scope an API key needs for an action, where the method's default is wrong (predict
    #: is a POST that needs `predict`, not `write`); see required_scope()
    action_scopes: dict[str, str] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        organization, role = organization_for_request(request)
        if organization is None or role is None:  # both or neither
            raise exceptions.PermissionDenied(
                "You are not a member of any organization. Sign up or ask an owner to invite you."
            )
        if organization.is_suspended:
            raise OrganizationSuspended(organization)
        self.permission_rule = self._check_role(request, role)
        self._check_key_scope(request)
        self.organization = organization
        self.role = role
        self._scope_token = scoping.activate(organization)
        self._check_json_body(request)

    def _check_role(self, request: Request, role: str) -> Rule | None:
        """The table's rule for the route and method, refusing a role below it (403 naming the
        role needed); a route or method missing from the table is refused to everyone."""
        method = (request.method or "GET").lower()
        if method not in self.http_method_names or getattr(self, method, None) is None:  # type: ignore[attr-defined]
            return None  # DRF answers 405 next; there is nothing to permit
        match = getattr(request, "resolver_match", None)
        try:
            rule = rule_for(getattr(match, "view_name", None), method)
        except NotInTable as exc:
            raise exceptions.PermissionDenied(exc.message) from None
        needed = [r for r in (rule.role, self.required_role) if r is not None]
        for floor in needed:
            if not Role.at_least(role, floor):
                raise exceptions.PermissionDenied(refusal_message(needed=floor, role=role))
        return rule

    def check_object_permission(self, obj: Any) -> None:
        """For an "own" rule: a member acts only on what they created (admins on anything).
        Called when the object is looked up, before the body is read, so the refusal is a 403
        and not a complaint about the body."""
        rule = self.permission_rule
        if rule is None or not rule.own:
            return
        request = self.request  # type: ignore[attr-defined]
        check_may_change(
            role=self.role,
            user=request.user,
            created_by_id=owner_id(obj),
            what=_("the %(kind)s '%(name)s'") % {"kind": obj._meta.verbose_name, "name": obj},
            action=_("delete") if request.method == "DELETE" else _("change"),
        )

    def required_scope(self, request: Request) -> str:
        """The scope an API key needs here: the action's in `action_scopes`, else `read` to
        read (GET, HEAD, OPTIONS) and `write` for the rest."""
        scope = self.action_scopes.get(getattr(self, "action", None) or "")
        if scope is not None:
            return scope
        return SCOPE_READ if request.method in permissions.SAFE_METHODS else SCOPE_WRITE

    def _check_key_scope(self, request: Request) -> None:
        # Credentials with scopes (API keys) say why they may not; the core knows them only by
        # this method, so it imports no feature app. Sessions and HTTP Basic have none.
        refusal = getattr(request.auth, "scope_refusal", None)
        if refusal is None:
            return
        kwargs = getattr(self, "kwargs", {}) or {}
        message = refusal(scope=self.required_scope(request), target_id=kwargs.get("pk"))
        if message:
            raise exceptions.PermissionDenied(message)

    def _check_json_body(self, request: Request) -> None:
        """A JSON body must be an object (of named fields): a view reading `request.data.get`
        from a list, a string or a number would fail with a 500."""
        if request.method not in ("POST", "PUT", "PATCH") or not is_json(request.content_type):
            return
        if getattr(self, "action", None) in self.own_json_body_actions:
            return
        if not request.stream:  # an empty body: the view says which fields it needs
            return
        # DRF's Request always sets both; its stubs allow None.
        parser = request.negotiator.select_parser(request, request.parsers)  # type: ignore[union-attr,arg-type]
        if parser is None:
            return  # a view that takes no JSON answers 415 itself, after its own lookups
        data = request.data
        if not isinstance(data, dict):
            raise exceptions.ValidationError(
                {
                    "body": [
                        _(
                            "The request body must be a JSON object of named fields, "
                            'like {"name": "..."}; this one is a JSON %(kind)s.'
                        )
                        % {"kind": json_kind(data)}
                    ]
                }
            )

    _scope_token: Token[Any] | None

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # The scope set in initial() is reset here, in a finally: DRF skips finalize_response
        # when a view raises an error its handler does not turn into a response (a 500).
        self._scope_token = None
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        finally:
            if self._scope_token is not None:
                scoping.deactivate(self._scope_token)
                self._scope_token = None


class TenantAPIView(TenantScopedMixin, APIView):
    pass


class TenantViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    """Base for tenant resources; subclasses set `model` and add the mixins they need.

    Querysets come from the model's scoped manager, so a view cannot forget the tenant filter.
    """

    lookup_value_converter = "uuid"
    model: type[Any]

    # A property over DRF's class attribute: the manager is looked up on each access.
    @property
    def queryset(self) -> Any:  # type: ignore[override]
        # A manager, not a queryset: it is only evaluated (and scoped) inside a request.
        return self.model.objects

    def get_queryset(self) -> Any:
        return self.model.objects.all()

    def get_object(self) -> Any:
        obj = super().get_object()
        self.check_object_permission(obj)
        return obj


class TenantReadOnlyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    pass


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return inner if key in ("non_field_errors", "detail") else f"{key}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """One error shape for the whole API: {"error": {"code", "message", "fields"?}}."""
    if isinstance(exc, ServiceError):
        body = {"error": exc.as_dict()}
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(
            "Not found. Check the id; it may belong to no object you can see."
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", _first_message(exc.detail), exc.detail)
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(code, _first_message(exc.detail))
    if response.status_code == status.HTTP_401_UNAUTHORIZED and not response.has_header(
        "WWW-Authenticate"
    ):
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response
