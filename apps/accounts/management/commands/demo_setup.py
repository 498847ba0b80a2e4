"""Create (or keep) the demo organization, its owner and a platform admin; print how to log in."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.tenants.models import Membership, Organization, Role
from apps.tenants.services import organization_create

DEMO_EMAIL = "demo@lepton.localhost"
ADMIN_EMAIL = "admin@lepton.localhost"


class Command(BaseCommand):
    help = "Create the demo organization and user, and a platform admin (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("LEPTON_DEMO_PASSWORD", "lepton-demo-2026")
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(email=DEMO_EMAIL, password=password)
        if not Membership.objects.filter(user=user).exists():
            organization_create(name="Demo Organization", owner=user)
        admin = User.objects.filter(email=ADMIN_EMAIL).first()
        if admin is None:
            User.objects.create_superuser(email=ADMIN_EMAIL, password=password)
        org = Organization.objects.filter(
            memberships__user=user, memberships__role=Role.OWNER
        ).first()
        if org is None:
            raise CommandError(f"{DEMO_EMAIL} is a member but owns no organization.")
        self.stdout.write(
            f"Demo organization: {org.name}\n"
            f"  log in as  {DEMO_EMAIL} / {password}\n"
            f"  platform admin (/admin/): {ADMIN_EMAIL} / {password}\n"
            "  (set LEPTON_DEMO_PASSWORD before the first run to choose another password)"
        )
