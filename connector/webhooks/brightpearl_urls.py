"""Routes for Brightpearl webhooks: POST /webhooks/brightpearl/<connection>/<secret>/."""

from django.urls import path

from .brightpearl import BrightpearlWebhookView

app_name = "brightpearl_webhooks"

urlpatterns = [
    path("<int:connection_id>/<str:secret>/", BrightpearlWebhookView.as_view(), name="receive"),
]
