"""Suspend an organization (or resume it with --resume) from the command line, as the admin's
actions do: for operators without the admin, and for the end-to-end tests."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.tenants.models import Organization
from apps.tenants.services import organization_resume, organization_suspend


class Command(BaseCommand):
    help = "Suspend the organization with this slug, or resume it with --resume."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--reason", default="", help="shown to the organization's members")
        parser.add_argument("--resume", action="store_true", help="lift the suspension")

    def handle(self, *args: Any, slug: str, reason: str, resume: bool, **options: Any) -> None:
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"No organization has the slug {slug!r}.")
        if resume:
            if organization_resume(organization=organization, actor=None):
                self.stdout.write(f"Resumed {organization.slug}.")
            else:
                self.stdout.write(f"{organization.slug} was not suspended.")
            return
        if organization.is_suspended:
            self.stdout.write(f"{organization.slug} is already suspended.")
            return
        cancelled = organization_suspend(organization=organization, actor=None, reason=reason)
        self.stdout.write(f"Suspended {organization.slug}; {cancelled} jobs cancelled.")
