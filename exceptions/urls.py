from django.urls import path

from . import views

urlpatterns = [
    path("queues/", views.queue_page, name="queues"),
    path("presence/", views.presence_update, name="presence"),
    path("exceptions/<int:pk>/", views.exception_detail, name="exception-detail"),
    path("exceptions/<int:pk>/actions/<slug:code>/", views.exception_action, name="exception-action"),
]
