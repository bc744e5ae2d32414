"""URL routes: the admin, inbound webhooks and the generic intake API."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path  # noqa: F401
from django.views.generic import RedirectView

from connector import health as connector_health
from connector import metrics as connector_metrics

urlpatterns = [
    path("", login_not_required(RedirectView.as_view(url="/admin/", permanent=False))),
    # Browsers ask every site for /favicon.ico; answer with the connector's icon, not a 404.
    path(
        "favicon.ico",
        login_not_required(RedirectView.as_view(url=static("connector/favicon.svg"))),
    ),
    path("admin/", admin.site.urls),
    # Inbound webhooks: /webhooks/brightpearl/<connection>/<secret>/ and one route per returns
    # platform of the registry (/webhooks/loop/…, /webhooks/returngo/…).
    path("webhooks/", include("connector.webhooks.urls")),
    # Generic JSON intake API and its OpenAPI schema.
    path("api/", include("connector.intake_api.urls")),
    # Operations: health for load balancers and monitoring, Prometheus metrics.
    path("health/", connector_health.health, name="health"),
    path("health/live/", connector_health.live, name="health-live"),
    path("metrics", connector_metrics.metrics_view, name="metrics"),
]
