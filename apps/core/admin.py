"""Admin base for tenant-owned models: platform admins see every tenant, on purpose."""

from django.contrib import admin

from apps.core.scoping import dangerously_all_tenants


class TenantModelAdmin(admin.ModelAdmin):
    """Runs each admin view in the platform-wide scope, rendered inside it.

    Django builds foreign-key choices and validates through the default (scoped) manager; in
    the admin, which only platform staff reach, that manager must see every organization.
    """

    list_select_related = ["organization"]

    def _all_tenants(self, view, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        with dangerously_all_tenants():
            response = view(*args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            return response

    def changelist_view(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return self._all_tenants(super().changelist_view, *args, **kwargs)

    def changeform_view(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return self._all_tenants(super().changeform_view, *args, **kwargs)

    def delete_view(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return self._all_tenants(super().delete_view, *args, **kwargs)

    def history_view(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return self._all_tenants(super().history_view, *args, **kwargs)

    def get_queryset(self, request):  # noqa: ANN001, ANN201
        return self.model.all_tenants.get_queryset().select_related("organization")
