"""Users (email login, custom from day one) and API keys (stored only as a hash)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.models import TenantModel


class EmailUserManager(UserManager):
    use_in_migrations = True

    def _create_user(self, username, email, password, **extra_fields):
        email = self.normalize_email(email or username)
        user = self.model(email=email, username=email, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username):
        # Emails are stored lower-cased (User.save); log in with them as they were typed.
        return self.get(email=(username or "").strip().lower())

    def create_user(self, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, email, password, **extra_fields)

    def create_superuser(self, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, email, password, **extra_fields)


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(_("email address"), unique=True)
    username = models.CharField(_("username"), max_length=254, unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = EmailUserManager()

    def save(self, *args, **kwargs) -> None:
        self.email = (self.email or "").strip().lower()
        self.username = self.email
        super().save(*args, **kwargs)


KEY_PREFIX = "lp"
SALTED = "sha256"


class Scope(models.TextChoices):
    """What an API key may do. read: GET everything; write: change anything but predict;
    predict: POST endpoints/{id}/predict/."""

    READ = "read", _("read")
    WRITE = "write", _("write")
    PREDICT = "predict", _("predict")


ALL_SCOPES = [Scope.READ.value, Scope.WRITE.value, Scope.PREDICT.value]


def hash_api_key(raw_key: str, *, salt: str | None = None) -> str:
    """A salted SHA-256 of the key, stored as `sha256$<salt>$<hex>`.

    Keys carry 256 random bits, so no slow KDF is needed; and no SECRET_KEY is involved, so
    rotating it voids no key.
    """
    salt = salt if salt is not None else secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}${raw_key}".encode()).hexdigest()
    return f"{SALTED}${salt}${digest}"


def _legacy_hashes(raw_key: str) -> list[str]:
    # Keys made before the salted scheme were an HMAC under SECRET_KEY; they still match under
    # the current key or any of SECRET_KEY_FALLBACKS (Django's way to rotate it).
    secrets_in_use = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [
        hmac.new(secret.encode(), raw_key.encode(), hashlib.sha256).hexdigest()
        for secret in secrets_in_use
    ]


def api_key_matches(stored: str, raw_key: str) -> bool:
    """Whether `raw_key` is the key whose hash is `stored` (either scheme), in constant time."""
    if stored.startswith(f"{SALTED}$"):
        _scheme, salt, _digest = stored.split("$", 2)
        return hmac.compare_digest(stored, hash_api_key(raw_key, salt=salt))
    return any(hmac.compare_digest(stored, legacy) for legacy in _legacy_hashes(raw_key))


def is_legacy_hash(stored: str) -> bool:
    return not stored.startswith(f"{SALTED}$")


class ApiKey(TenantModel):
    name = models.CharField(_("name"), max_length=100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    key_hash = models.CharField(max_length=128)
    scopes = models.JSONField(_("scopes"), default=list)
    #: ids of the endpoints the key may call predict on; empty: every endpoint
    endpoint_ids = models.JSONField(_("endpoints"), default=list, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({KEY_PREFIX}_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def scope_refusal(self, *, scope: str, target_id: Any = None) -> str | None:
        """Why this key may not do what needs `scope` (on `target_id`), or None if it may.

        Read by the API's base view (apps.core.api), which knows keys only by this method.
        """
        if scope not in self.scopes:
            return gettext(
                "This key lacks the %(scope)s scope; it has %(scopes)s. Create a key with the "
                "%(scope)s scope on the API keys page, or use one that has it."
            ) % {"scope": scope, "scopes": ", ".join(self.scopes) or gettext("none")}
        if scope == Scope.PREDICT and self.endpoint_ids and str(target_id) not in self.endpoint_ids:
            return gettext(
                "This key may not call endpoint %(endpoint)s; it may call only %(allowed)s. "
                "Create a key for this endpoint on the API keys page."
            ) % {"endpoint": target_id, "allowed": ", ".join(self.endpoint_ids)}
        return None


class UserSession(models.Model):
    """One browser session of a user, as the sessions page lists it.

    Django's session rows do not say whose they are without decoding each one, so this row
    follows a logged-in session: its id is kept inside the session's data, which survives the
    key changes of log-in and password change, and `session_key` is updated to match.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="browser_sessions"
    )
    session_key = models.CharField(max_length=40, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    address = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.user} {self.created_at:%Y-%m-%d %H:%M}"
