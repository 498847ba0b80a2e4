from django.urls import path

from apps.datasets import tabular_views, views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("versions/<uuid:pk>/", views.version_detail, name="version"),
    path("versions/<uuid:pk>/confirm/", tabular_views.tabular_confirm, name="tabular_confirm"),
]
