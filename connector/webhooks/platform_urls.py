"""Returns-platform webhook routes, mounted under /webhooks/."""

from django.urls import path

from .platforms import LoopWebhookView, ReturnGOWebhookView

urlpatterns = [
    path(
        "loop/<int:connection_id>/<str:secret>/",
        LoopWebhookView.as_view(),
        name="loop-webhook",
    ),
    path(
        "returngo/<int:connection_id>/<str:secret>/",
        ReturnGOWebhookView.as_view(),
        name="returngo-webhook",
    ),
]
