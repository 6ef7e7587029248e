from django.urls import path

from . import views

urlpatterns = [
    path("inventory/", views.stock_list, name="inventory"),
    path("inventory/replenishment/", views.suggestion_list, name="replenishment"),
    path("inventory/replenishment/<int:pk>/<slug:action>/", views.suggestion_action, name="replenishment-action"),
    path("inventory/<str:location_code>/<str:sku_code>/", views.level_detail, name="inventory-level"),
]
