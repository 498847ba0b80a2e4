"""Sign-up and API keys."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import ALL_SCOPES, KEY_PREFIX, ApiKey, User, hash_api_key
from apps.audit.services import audit_record
from apps.core.errors import InvalidInput
from apps.tenants.models import Organization, Role
from apps.tenants.services import organization_create


@transaction.atomic
def user_signup(*, email: str, password: str, organization_name: str) -> tuple[User, Organization]:
    """Create a user and their organization, with the user as its owner."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput("Enter a valid email address, like name@company.com.", field="email")
    if User.objects.filter(email=email).exists():
        raise InvalidInput(
            "An account with this email already exists. Log in instead.", field="email"
        )
    organization_name = (organization_name or "").strip()
    if not organization_name:
        raise InvalidInput(
            "Name your organization (your company or team).", field="organization_name"
        )
    if len(organization_name) > 120:
        raise InvalidInput(
            "The organization name is too long: 120 characters at most.", field="organization_name"
        )
    candidate = User(email=email, username=email)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password")
    user = User.objects.create_user(email=email, password=password)
    organization = organization_create(name=organization_name, owner=user)
    return user, organization


def _clean_scopes(scopes: Any) -> list[str]:
    if scopes is None:
        return list(ALL_SCOPES)  # a key made without naming scopes works as keys always did
    if isinstance(scopes, str) or not isinstance(scopes, (list, tuple)):
        raise InvalidInput(
            _('Scopes must be a list, like ["predict"]: any of read, write, predict.'),
            field="scopes",
        )
    unknown = [str(s) for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise InvalidInput(
            _("Unknown scope %(scope)s: choose among read, write and predict.")
            % {"scope": unknown[0]},
            field="scopes",
        )
    if not scopes:
        raise InvalidInput(
            _("Give the key at least one scope: read, write or predict."), field="scopes"
        )
    return [s for s in ALL_SCOPES if s in scopes]


def _clean_endpoint_ids(*, organization: Organization, endpoint_ids: Any) -> list[str]:
    if not endpoint_ids:
        return []
    if isinstance(endpoint_ids, str) or not isinstance(endpoint_ids, (list, tuple)):
        raise InvalidInput(_("Endpoints must be a list of endpoint ids."), field="endpoints")
    from apps.deployments.models import Endpoint

    wanted = []
    for value in endpoint_ids:
        try:
            wanted.append(str(uuid.UUID(str(value))))
        except ValueError:
            raise InvalidInput(
                _("%(value)s is not an endpoint id.") % {"value": value}, field="endpoints"
            ) from None
    found = {
        str(pk)
        for pk in Endpoint.objects.for_organization(organization)
        .filter(pk__in=wanted)
        .values_list("pk", flat=True)
    }
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise InvalidInput(
            _("No endpoint %(id)s in your organization; list them at /api/v1/endpoints/.")
            % {"id": missing[0]},
            field="endpoints",
        )
    return sorted(set(wanted))


def _clean_expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(
            _("The expiry must be in the future; leave it out for a key that does not expire."),
            field="expires_at",
        )
    return expires_at


def api_key_create(
    *,
    organization: Organization,
    user: Any,
    name: str,
    scopes: Any = None,
    endpoint_ids: Any = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create an API key; the raw key is returned once and never stored.

    `scopes` left out gives all three (read, write, predict); `endpoint_ids` limits predict to
    those endpoints; `expires_at` ends the key then.
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Give the key a name, e.g. the system that will use it.", field="name")
    if len(name) > 100:
        raise InvalidInput("The key name is too long: 100 characters at most.", field="name")
    clean_scopes = _clean_scopes(scopes)
    clean_endpoints = _clean_endpoint_ids(organization=organization, endpoint_ids=endpoint_ids)
    expires_at = _clean_expiry(expires_at)
    prefix = secrets.token_hex(6)
    raw_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32).replace('_', 'A')}"
    key = ApiKey.objects.for_organization(organization).create(
        organization=organization,
        created_by=user,
        name=name,
        prefix=prefix,
        key_hash=hash_api_key(raw_key),
        scopes=clean_scopes,
        endpoint_ids=clean_endpoints,
        expires_at=expires_at,
    )
    audit_record(organization=organization, actor=user, action="api_key.create", target=key)
    return key, raw_key


def api_key_rehash(*, key: ApiKey, raw_key: str) -> None:
    """Store a key made under the old SECRET_KEY-based hash with the salted scheme, now that its
    raw value is at hand (it authenticated): from then on no SECRET_KEY rotation can void it."""
    ApiKey.objects.for_organization(key.organization).filter(
        pk=key.pk, key_hash=key.key_hash
    ).update(key_hash=hash_api_key(raw_key))


def api_keys_visible(*, organization: Organization, user: Any, role: str) -> Any:
    """The keys a person may see and revoke: admins and owners everyone's, members their own."""
    keys = ApiKey.objects.for_organization(organization).select_related("created_by")
    if Role.at_least(role, Role.ADMIN):
        return keys
    return keys.filter(created_by=user)


def api_key_revoke(*, key: ApiKey, actor: Any) -> ApiKey:
    """Revoke a key; calls with it fail from now on. Revoking twice is harmless."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            organization=key.organization, actor=actor, action="api_key.revoke", target=key
        )
    return key
