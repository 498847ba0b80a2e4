from django.urls import path

from apps.training import views

app_name = "training"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("new/", views.model_create, name="create"),
    path("runs/<uuid:pk>/", views.run_detail, name="run"),
    path("runs/<uuid:pk>/cancel/", views.run_cancel, name="cancel"),
    path("<uuid:pk>/train/", views.config_retrain, name="retrain"),
    path("<uuid:pk>/delete/", views.model_delete, name="delete"),
    path("datasets/<uuid:pk>/leaderboard/", views.dataset_leaderboard_page, name="leaderboard"),
]
