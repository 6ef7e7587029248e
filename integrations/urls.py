from django.urls import path

from . import views

app_name = "integrations"

urlpatterns = [
    path("<slug:slug>/webhooks/", views.webhook, name="webhook"),
]
