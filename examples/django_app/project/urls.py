"""URLs of the example project."""

from chat import views
from django.urls import path

urlpatterns = [
    path("", views.index),
    path("shout", views.shout),
    path("messages", views.messages),
]
