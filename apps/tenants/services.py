"""Writes for organizations and memberships."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.text import slugify

from apps.tenants.models import Membership, Organization, Role


def _unique_slug(name: str) -> str:
    base = slugify(name, allow_unicode=False)[:100] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def organization_create(*, name: str, owner: Any, region: str | None = None) -> Organization:
    """Create an organization and make `owner` its owner."""
    name = name.strip()
    organization = Organization.objects.create(
        name=name, slug=_unique_slug(name), **({"region": region} if region else {})
    )
    Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    from apps.audit.services import audit_record

    audit_record(
        organization=organization, actor=owner, action="organization.create", target=organization
    )
    return organization
