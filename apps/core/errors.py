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


class QuotaExceeded(ServiceError):
    status_code = 403
    code = "quota_exceeded"


def check_may_delete(*, role: str, user: Any, created_by_id: Any, what: str) -> None:
    """Admins and owners may delete anything of their organization, members what they made.

    Raises ServiceError (403) naming `what` otherwise.
    """
    from apps.tenants.models import Role

    if Role.at_least(role, Role.ADMIN) or created_by_id == getattr(user, "pk", None):
        return
    raise ServiceError(
        f"Only the member who created {what}, or an admin, can delete it.",
        code="forbidden",
        status_code=403,
    )
