"""Users and API keys in the admin.

A key made here would have a secret nobody was shown, so keys are made by their owners only.
Staff may rename one or revoke it (through the service, audited). Deleting one stays possible,
as it was: a user's keys go with the user, and their usage events stay, without the key.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.accounts.forms import ThrottledAdminAuthenticationForm
from apps.accounts.models import ApiKey, User
from apps.accounts.services import api_key_revoke
from apps.core.admin import TenantModelAdmin

# The admin's log-in is a way to guess passwords like the page's; it shares its throttle.
admin.site.login_form = ThrottledAdminAuthenticationForm


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_staff", "is_active", "date_joined", "last_login"]
    search_fields = ["email"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


KEY_FIELDS = (
    "name",
    "organization",
    "created_by",
    "prefix",
    "scopes",
    "endpoint_ids",
    "expires_at",
    "created_at",
    "last_used_at",
    "revoked_at",
)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantModelAdmin):
    list_display = [
        "name",
        "organization",
        "created_by",
        "prefix",
        "scopes",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["organization", "created_by"]
    search_fields = ["name", "prefix", "organization__name"]
    fields = KEY_FIELDS
    readonly_fields = KEY_FIELDS[1:]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        keys = [key for key in queryset if key.revoked_at is None]
        for key in keys:
            api_key_revoke(key=key, actor=request.user)
        message = ngettext("Revoked %(n)d key.", "Revoked %(n)d keys.", len(keys))
        self.message_user(request, message % {"n": len(keys)}, messages.SUCCESS)
