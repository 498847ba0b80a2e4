"""Endpoints: a deployed model version behind the REST prediction API."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import TenantModel


class Endpoint(TenantModel):
    name = models.CharField(_("name"), max_length=120)
    model_version = models.ForeignKey(
        "training.ModelVersion", on_delete=models.PROTECT, related_name="endpoints"
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("endpoint")
        verbose_name_plural = _("endpoints")

    def __str__(self) -> str:
        return self.name
