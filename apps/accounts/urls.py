from django.urls import path

from apps.accounts import email_views, password_views, views
from apps.tenants import switch_views

app_name = "accounts"
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/", password_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/reset/", password_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        password_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        password_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        password_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("email/", email_views.email_change, name="email_change"),
    path(
        "email/confirm/<str:token>/",
        email_views.email_change_confirm,
        name="email_change_confirm",
    ),
    path(
        "organization/switch/",
        switch_views.organization_switch,
        name="organization_switch",
    ),
    path("organizations/new/", switch_views.organization_new, name="organization_create"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/end-others/", views.sessions_end_others, name="sessions_end_others"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<uuid:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]
