"""Every inbound webhook route, mounted under /webhooks/:

* ``brightpearl/<connection>/<secret>/`` — Brightpearl's resource events;
* ``<platform>/<connection>/<secret>/`` — each returns platform the registry says sends webhooks
  (``loop``, ``returngo``); any other name is a 404.
"""

from django.urls import path

from .brightpearl import BrightpearlWebhookView
from .platforms import PlatformWebhookView

app_name = "webhooks"

urlpatterns = [
    path(
        "brightpearl/<int:connection_id>/<str:secret>/",
        BrightpearlWebhookView.as_view(),
        name="brightpearl",
    ),
    path(
        "<slug:platform>/<int:connection_id>/<str:secret>/",
        PlatformWebhookView.as_view(),
        name="platform",
    ),
]
