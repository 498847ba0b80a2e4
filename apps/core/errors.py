"""Errors a user can act on. Services raise them; the API and pages turn them into 4xx answers.

Every message says what was wrong and how to fix it (which file, which field, which limit).
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request the portal refuses, with a message meant for the person who sent it."""

    status_code = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code

    def as_dict(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.field:
            body["fields"] = {self.field: [self.message]}
        return body


class InvalidInput(ServiceError):
    status_code = 400
    code = "invalid"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "too_large"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Forbidden(ServiceError):
    """The caller's role does not allow this (apps/core/permissions.py)."""

    status_code = 403
    code = "forbidden"


class QuotaExceeded(ServiceError):
    status_code = 403
    code = "quota_exceeded"


def check_may_change(
    *,
    role: str | None,
    user: Any,
    created_by_id: Any,
    what: str,
    action: str,
    organization_id: Any = None,
) -> None:
    """Admins and owners may change anything of their organization, members what they created,
    viewers nothing (the "own" rules of apps/core/permissions.py, checked where the object is).

    `role` is the caller's role; None reads it from `user`'s membership in `organization_id`
    (for callers that do not hold it; no membership is no role). `action` is the verb the
    message names ("delete", "cancel", ...). Raises ServiceError (403) naming `what` otherwise.
    """
    from django.utils.translation import gettext as _

    from apps.core.permissions import may_change, refusal_message
    from apps.tenants.models import Membership, Role

    if role is None and organization_id is not None and getattr(user, "pk", None) is not None:
        role = (
            Membership.objects.filter(user_id=user.pk, organization_id=organization_id)
            .values_list("role", flat=True)
            .first()
        )
    if may_change(role=role, user=user, created_by_id=created_by_id):
        return
    if role is not None and not Role.at_least(role, Role.MEMBER):
        message = refusal_message(needed=Role.MEMBER, role=role)
    else:
        message = _("Only the member who created %(what)s, or an admin, can %(action)s it.") % {
            "what": what,
            "action": action,
        }
    raise Forbidden(message)
