"""Pages that read across the apps: exception mining and orders at risk."""

from django.urls import path

from . import insights

urlpatterns: list = [
    path("insights/mining/", insights.exception_mining, name="exception-mining"),
    path("orders/at-risk/", insights.orders_at_risk, name="orders-at-risk"),
]
