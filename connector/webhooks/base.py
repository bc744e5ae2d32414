"""The shared webhook view: what every source does the same way.

1. Route by connection ID and an unguessable per-connection secret in the URL, compared in
   constant time; a wrong secret or unknown connection answers 404 and stores nothing.
2. Store the raw event (headers, body, remote address) before anything else — in its own
   transaction (the view is not wrapped in the request transaction), so the row survives.
3. Verify and parse (each source says how). Malformed input is recorded on the row and answered
   4xx (senders do not retry 4xx); anything unexpected is recorded and answered 500 so the
   sender retries.
4. Answer 2xx fast and process after commit in a Celery task that re-fetches what the event
   names: the payload is only a hint.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from ..models import Connection, WebhookEvent

logger = logging.getLogger("connector.webhooks")

# Headers worth keeping for staff and support; never cookies or authorization.
KEPT_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    "x-loop-signature",
    "x-request-id",
    "ruid",
)


class Rejected(Exception):
    """Malformed or unverifiable input: recorded on the event and answered with `status`."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Parsed:
    event: str
    resource_type: str = ""
    resource_ids: str = ""
    dedupe_key: str = ""


def secret_matches(connection: Connection, given: str) -> bool:
    expected = connection.webhook_secret or ""
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


@method_decorator(
    [csrf_exempt, login_not_required, transaction.non_atomic_requests], name="dispatch"
)
class WebhookView(View):
    source: str = ""
    http_method_names = ["post"]

    # --- what a source declares --------------------------------------------------------------
    def verify(self, request: HttpRequest, connection: Connection, body: bytes) -> None:
        """Raise Rejected when the delivery is not authentic (beyond the URL secret)."""

    def parse(self, connection: Connection, body: bytes) -> Parsed:
        raise NotImplementedError

    def enqueue(self, event: WebhookEvent) -> None:
        raise NotImplementedError

    # --- the shared flow ---------------------------------------------------------------------
    def post(self, request: HttpRequest, connection_id: int, secret: str) -> HttpResponse:
        connection = Connection.objects.filter(pk=connection_id).first()
        if connection is None or not secret_matches(connection, secret):
            return HttpResponse(status=404)
        limit = settings.WEBHOOK_MAX_BODY_BYTES
        body = request.body if int(request.META.get("CONTENT_LENGTH") or 0) <= limit else b""
        oversized = int(request.META.get("CONTENT_LENGTH") or 0) > limit or len(body) > limit
        event = WebhookEvent.objects.create(
            connection=connection,
            source=self.source,
            remote_addr=request.META.get("REMOTE_ADDR") or None,
            headers={k: v for k, v in request.headers.items() if k.lower() in KEPT_HEADERS},
            body=body[:limit].decode("utf-8", errors="replace"),
        )
        try:
            if oversized:
                raise Rejected(f"Body larger than {limit} bytes.", status=413)
            if not connection.enabled:
                raise Rejected("The connection is disabled.", status=409)
            self.verify(request, connection, body)
            parsed = self.parse(connection, body)
        except Rejected as exc:
            _mark(event, WebhookEvent.Status.REJECTED, str(exc))
            return JsonResponse({"error": str(exc)}, status=exc.status)
        except Exception as exc:  # recorded, then a 5xx so the sender retries
            logger.exception("webhook %s for connection %s failed", event.pk, connection.pk)
            _mark(event, WebhookEvent.Status.FAILED, f"{exc.__class__.__name__}: {exc}")
            return JsonResponse({"error": "internal error"}, status=500)

        event.event = parsed.event[:100]
        event.resource_type = parsed.resource_type[:50]
        event.resource_ids = parsed.resource_ids
        event.dedupe_key = parsed.dedupe_key[:200]
        duplicate = bool(parsed.dedupe_key) and (
            WebhookEvent.objects.filter(
                connection=connection, source=self.source, dedupe_key=event.dedupe_key
            )
            .exclude(pk=event.pk)
            .exclude(status__in=[WebhookEvent.Status.REJECTED, WebhookEvent.Status.FAILED])
            .exists()
        )
        if duplicate:
            event.status = WebhookEvent.Status.DUPLICATE
        event.save(update_fields=["event", "resource_type", "resource_ids", "dedupe_key", "status"])
        if not duplicate:
            transaction.on_commit(lambda: self.enqueue(event))
        return JsonResponse({"received": event.pk, "duplicate": duplicate}, status=202)


def _mark(event: WebhookEvent, status: str, error: str) -> None:
    event.status = status
    event.error = error[:2000]
    event.save(update_fields=["status", "error"])


def parse_json_object(body: bytes) -> dict:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(f"Body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Rejected("Body must be a JSON object.")
    return data
