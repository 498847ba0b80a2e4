from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from lepton_portal import views

admin.site.site_header = _("Lepton Portal administration")
admin.site.site_title = _("Lepton Portal admin")
# The app list beside every page left job lists 700 px at 1366 px; Home lists the apps.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("lepton_portal.api_urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("models/", include("apps.training.urls")),
    path("endpoints/", include("apps.deployments.urls")),
    path("organization/", include("apps.tenants.urls")),
    path("invitations/", include("apps.tenants.invitation_urls")),
    path("", views.landing, name="home"),
]
