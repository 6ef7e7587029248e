from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from exceptions.api import ExceptionViewSet
from orders.api import AvailabilityView, OrderViewSet, ShipmentEventView

from . import views

api = SimpleRouter()
api.register("orders", OrderViewSet, basename="order")
api.register("exceptions", ExceptionViewSet, basename="exception")
api_v1 = [
    *api.urls,
    path("inventory/availability/", AvailabilityView.as_view(), name="availability"),
    path("shipments/<int:pk>/events/", ShipmentEventView.as_view(), name="shipment-events"),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("integrations/", include("integrations.urls")),
    path("", include("inventory.urls")),
    path("", include("exceptions.urls")),
    path("", include("orders.urls")),
    path("", include("fulfillment.insights_urls")),
    path("", views.dashboard, name="home"),
    path("dashboard.csv", views.dashboard_csv, name="dashboard-csv"),
]

handler404 = "fulfillment.views.not_found"
handler500 = "fulfillment.views.server_error"
