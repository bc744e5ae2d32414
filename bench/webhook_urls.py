"""The connector's URLs plus the baseline `bench/webhook_throughput.py` compares the Brightpearl
webhook endpoint with: a view that stores the delivery in one INSERT (the same table and
columns, nothing looked up, parsed or queued). Benchmark only (`bench/webhook_settings.py`)."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as connector_urlpatterns
from connector.models import WebhookEvent


@csrf_exempt
@login_not_required
def one_insert(request: HttpRequest, connection_id: int) -> JsonResponse:
    event = WebhookEvent.objects.create(
        connection_id=connection_id,
        source=WebhookEvent.Source.BRIGHTPEARL,
        remote_addr=request.META.get("REMOTE_ADDR") or None,
        body=request.body.decode("utf-8", errors="backslashreplace"),
    )
    return JsonResponse({"received": event.pk}, status=202)


urlpatterns = [
    path("bench/one-insert/<int:connection_id>/", one_insert),
    *connector_urlpatterns,
]
