from django.urls import path
from django.views.generic import RedirectView

from migrator import views

app_name = "migrator"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("hooks/painting", views.painting_hook, name="painting-hook"),
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
]
