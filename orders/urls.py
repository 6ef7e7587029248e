from django.urls import path

from . import list_views, views

urlpatterns = [
    path("orders/", list_views.order_list, name="orders"),
    path("search/", list_views.search, name="search"),
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
    path("orders/<int:pk>/do/<slug:code>/", views.order_action, name="order-action"),
    path("approvals/splits/", views.split_approvals, name="split-approvals"),
    path("approvals/splits/<int:exception_id>/<slug:code>/", views.split_approval_action, name="split-approval-action"),
]
