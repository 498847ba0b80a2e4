from django.urls import path

from apps.datasets import tabular_views, views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("<uuid:pk>/delete/", views.dataset_delete_page, name="delete"),
    path("versions/<uuid:pk>/", views.version_detail, name="version"),
    path("versions/<uuid:pk>/confirm/", tabular_views.tabular_confirm, name="tabular_confirm"),
    path("versions/<uuid:pk>/gallery/", views.version_gallery, name="gallery"),
    path("versions/<uuid:pk>/download/", views.version_download, name="download"),
    path("versions/<uuid:pk>/new-version/", views.version_derive, name="derive"),
    path("items/<uuid:pk>/thumbnail/", views.item_thumbnail, name="item_thumbnail"),
    path("items/<uuid:pk>/image/", views.item_image, name="item_image"),
]
