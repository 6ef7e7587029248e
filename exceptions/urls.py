from django.urls import path

from . import views

urlpatterns = [
    path("queues/", views.queue_page, name="queues"),
    path("queues/bulk/", views.queue_bulk, name="queue-bulk"),
    path("queues/views/", views.saved_view_create, name="saved-view-create"),
    path("queues/views/<int:pk>/delete/", views.saved_view_remove, name="saved-view-delete"),
    path("presence/", views.presence_update, name="presence"),
    path("exceptions/<int:pk>/", views.exception_detail, name="exception-detail"),
    path("exceptions/<int:pk>/actions/<slug:code>/", views.exception_action, name="exception-action"),
]
