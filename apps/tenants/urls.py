"""Team pages, under /organization/."""

from django.urls import path

from apps.tenants import views

app_name = "tenants"
urlpatterns = [
    path("members/", views.members, name="members"),
    path("members/invite/", views.invite, name="invite"),
    path("members/leave/", views.leave, name="leave"),
    path("members/<uuid:pk>/role/", views.member_role, name="member_role"),
    path("members/<uuid:pk>/remove/", views.member_remove_view, name="member_remove"),
    path("invitations/<uuid:pk>/resend/", views.invitation_resend_view, name="invitation_resend"),
    path("invitations/<uuid:pk>/revoke/", views.invitation_revoke_view, name="invitation_revoke"),
]
