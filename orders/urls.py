from django.urls import path

from . import views

urlpatterns = [
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
    path("approvals/splits/", views.split_approvals, name="split-approvals"),
    path("approvals/splits/<int:exception_id>/<slug:code>/", views.split_approval_action, name="split-approval-action"),
]
