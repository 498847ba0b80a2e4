from django.urls import path

from apps.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("versions/<uuid:pk>/", views.version_detail, name="version"),
]
