"""The page an invitation's emailed link opens, under /invitations/ (outside any organization:
the person opening it may belong to none yet)."""

from django.urls import path

from apps.tenants import views

app_name = "invitations"
urlpatterns = [
    path("<str:token>/", views.invitation_accept_view, name="accept"),
]
