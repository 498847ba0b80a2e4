"""REST authentication: by API key (`Authorization: Bearer lp_<prefix>_<secret>`), and by email
and password (HTTP Basic) under the same log-in throttle as the page."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.models import KEY_PREFIX, ApiKey, api_key_matches, is_legacy_hash
from apps.accounts.services import api_key_rehash
from apps.accounts.throttling import LOGIN, TooManyAttempts
from apps.tenants.models import Membership
from apps.tenants.refusal import OrganizationSuspended


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() not in ("bearer", "api-key"):
            return None
        raw_key = raw_key.strip()
        parts = raw_key.split("_")
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            raise exceptions.AuthenticationFailed(
                "Malformed API key: expected 'Bearer lp_<prefix>_<secret>' as shown when the "
                "key was created."
            )
        key = (
            ApiKey.all_tenants.select_related("organization", "created_by")
            .filter(prefix=parts[1], revoked_at__isnull=True, organization__is_active=True)
            .first()
        )
        if key is None or not api_key_matches(key.key_hash, raw_key):
            raise exceptions.AuthenticationFailed(
                "Invalid or revoked API key. Create a new one on the API keys page."
            )
        if key.is_expired:
            raise exceptions.AuthenticationFailed(
                gettext(
                    "This API key expired on %(when)s. Create a new one on the API keys page, "
                    "or POST /api/v1/api-keys/ with your email and password."
                )
                % {"when": key.expires_at.isoformat(timespec="minutes")}  # type: ignore[union-attr]
            )
        if key.organization.is_suspended:
            # 403, not 401: the key is good, its organization is refused until it is resumed.
            raise OrganizationSuspended(key.organization)
        user = key.created_by
        if (
            not user.is_active
            or not Membership.objects.filter(user=user, organization=key.organization).exists()
        ):
            raise exceptions.AuthenticationFailed(
                "This API key's creator no longer belongs to the organization; create a new key."
            )
        if is_legacy_hash(key.key_hash):
            api_key_rehash(key=key, raw_key=raw_key)
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.for_organization(key.organization).filter(pk=key.pk).update(
                last_used_at=now
            )
        return user, key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class AttemptsThrottled(exceptions.Throttled):
    """The API's 429 for a spent attempt budget: its message in the error shape, and
    `Retry-After`, which DRF's handler writes from `wait`."""

    wait: int | None

    def __init__(self, error: TooManyAttempts) -> None:
        super().__init__(detail=error.message, code="throttled")
        self.wait = error.retry_after


class ThrottledBasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic with the email and password; failures use up the log-in budget."""

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[Any, None]:
        if request is None:
            return super().authenticate_credentials(userid, password, request)
        try:
            LOGIN.reserve(request, account=userid)
        except TooManyAttempts as exc:
            raise AttemptsThrottled(exc) from None
        result = super().authenticate_credentials(userid, password, request)
        LOGIN.release(request, account=userid)
        return result
