"""Suspend an organization (or resume it with --resume) from the command line, as the admin's
actions do: for operators without the admin, and for the end-to-end tests."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

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
            raise CommandError(_("No organization has the slug %(slug)s.") % {"slug": slug})
        if resume:
            if organization_resume(organization=organization, actor=None):
                self.stdout.write(_("Resumed %(slug)s.") % {"slug": slug})
            else:
                self.stdout.write(_("%(slug)s was not suspended.") % {"slug": slug})
            return
        if organization.is_suspended:
            self.stdout.write(_("%(slug)s is already suspended.") % {"slug": slug})
            return
        cancelled = organization_suspend(organization=organization, actor=None, reason=reason)
        message = ngettext(
            "Suspended %(slug)s; %(n)d job cancelled.",
            "Suspended %(slug)s; %(n)d jobs cancelled.",
            cancelled,
        )
        self.stdout.write(message % {"slug": slug, "n": cancelled})
