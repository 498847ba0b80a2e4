from django.urls import path

from apps.deployments import views

app_name = "deployments"
urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("deploy/", views.endpoint_deploy, name="deploy"),
    path("<uuid:pk>/", views.endpoint_detail, name="detail"),
    path("<uuid:pk>/delete/", views.endpoint_delete_page, name="delete"),
]
