from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("exceptions.urls")),
    path("", include("orders.urls")),
    path("", RedirectView.as_view(pattern_name="queues", permanent=False), name="home"),
]
