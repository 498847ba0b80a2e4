"""Admin base for tenant-owned models: platform admins see every tenant, on purpose."""

from django.contrib import admin


class TenantModelAdmin(admin.ModelAdmin):
    list_select_related = ["organization"]

    def get_queryset(self, request):
        return self.model.unscoped.get_queryset().select_related("organization")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if hasattr(related, "unscoped"):
            kwargs.setdefault("queryset", related.unscoped.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
