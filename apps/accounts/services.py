"""Sign-up and API keys."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import KEY_PREFIX, ApiKey, User, hash_api_key
from apps.audit.services import audit_record
from apps.core.errors import InvalidInput
from apps.tenants.models import Organization
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


def api_key_create(*, organization: Organization, user: Any, name: str) -> tuple[ApiKey, str]:
    """Create an API key; the raw key is returned once and never stored."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Give the key a name, e.g. the system that will use it.", field="name")
    if len(name) > 100:
        raise InvalidInput("The key name is too long: 100 characters at most.", field="name")
    prefix = secrets.token_hex(6)
    raw_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32).replace('_', 'A')}"
    key = ApiKey.objects.create(
        organization=organization,
        created_by=user,
        name=name,
        prefix=prefix,
        key_hash=hash_api_key(raw_key),
    )
    audit_record(organization=organization, actor=user, action="api_key.create", target=key)
    return key, raw_key


def api_key_revoke(*, key: ApiKey, actor: Any) -> ApiKey:
    """Revoke a key; calls with it fail from now on. Revoking twice is harmless."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            organization=key.organization, actor=actor, action="api_key.revoke", target=key
        )
    return key
