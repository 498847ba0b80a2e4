"""Organizations (tenants) and who belongs to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class Role(models.TextChoices):
    """What a person may do in an organization, least first; each role has every power of the
    ones above it. apps/core/permissions.py says which role each route needs (the README's
    permission table is generated from it)."""

    #: reads everything, changes nothing
    VIEWER = "viewer", _("Viewer")
    #: creates and manages their own datasets, models, runs and endpoints; uses the
    #: organization's (trains on its datasets, deploys its models)
    MEMBER = "member", _("Member")
    #: manages everything in the organization, members and keys included
    ADMIN = "admin", _("Admin")
    #: as admin, plus billing settings, region and deleting the organization
    OWNER = "owner", _("Owner")

    @classmethod
    def rank(cls, role: str) -> int:
        return [cls.VIEWER, cls.MEMBER, cls.ADMIN, cls.OWNER].index(role)

    @classmethod
    def at_least(cls, role: str, required: str) -> bool:
        return cls.rank(role) >= cls.rank(required)


class Region(models.TextChoices):
    EU = "eu", _("Europe")
    US = "us", _("Americas")
    APAC = "apac", _("Asia-Pacific")


class Organization(BaseModel):
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=140, unique=True)
    region = models.CharField(_("region"), max_length=16, choices=Region, default=Region.EU)
    is_active = models.BooleanField(_("active"), default=True)
    # The storage quota, like every limit, is the plan's or the organization's override
    # (apps.quotas); migration 0005 dropped the column it had here after quotas 0002 moved it.
    #: set by platform staff (apps.tenants.suspension): the organization's members and keys are
    #: refused until it is resumed. Unlike is_active (off: the organization is gone from its
    #: members' view), a suspended one is still resolved, so it can say why it is refused.
    suspended_at = models.DateTimeField(_("suspended at"), null=True, blank=True)
    suspension_reason = models.TextField(_("suspension reason"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self) -> str:
        return self.name

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None

    def suspension_message(self) -> str:
        """Why the organization's pages, keys and endpoints are refused, and whom to ask."""
        message = gettext("The organization %(name)s is suspended.") % {"name": self.name}
        if self.suspension_reason:
            message += " " + gettext("Reason: %(reason)s") % {"reason": self.suspension_reason}
        contacts = ", ".join(email for _name, email in settings.ADMINS)
        if contacts:
            message += " " + gettext(
                "Contact the platform's administrators (%(contacts)s) to have it resumed."
            ) % {"contacts": contacts}
        else:
            message += " " + gettext("Contact the platform's administrators to have it resumed.")
        return message


class Membership(BaseModel):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=16, choices=Role, default=Role.MEMBER)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="unique_membership")
        ]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class Invitation(BaseModel):
    """An invitation to join an organization with a role, sent by email as a single-use link.

    Not a TenantModel: the invitee has no organization yet, so the accept page finds the row by
    its token's hash alone (apps.tenants.team_selectors.invitation_by_token); every other read
    names the organization. Only the SHA-256 of the token is stored: the link in the email is
    the one copy of it.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(_("email"))
    role = models.CharField(_("role"), max_length=16, choices=Role, default=Role.MEMBER)
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("invited by"),
    )
    expires_at = models.DateTimeField(_("expires at"))
    last_sent_at = models.DateTimeField(_("last sent at"))
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("accepted by"),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open invitation per address: inviting again refreshes it instead.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="unique_pending_invitation",
            )
        ]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.role})"

    @property
    def is_pending(self) -> bool:
        """Neither accepted nor revoked (it may still have expired)."""
        return self.accepted_at is None and self.revoked_at is None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
