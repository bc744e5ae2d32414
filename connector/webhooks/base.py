"""The shared webhook view: what every source does the same way.

1. Route by connection ID and an unguessable per-connection secret in the URL, compared in
   constant time; a wrong secret or unknown connection answers 404 and stores nothing. What
   the URL names is kept in the process for a few seconds (routes.py).
2. Verify and parse (each source says how) — nothing is trusted yet.
3. Store the raw event (headers, body, remote address) with what verification and parsing
   found, in one INSERT and so one commit per delivery (the view is not wrapped in the request
   transaction): malformed input is stored rejected and answered 4xx (senders do not retry
   4xx); anything unexpected is stored failed with the error and answered 500 so the sender
   retries; a repeated event is stored as a duplicate of the first delivery.
4. Answer 2xx fast and process after commit in a Celery task that re-fetches what the event
   names: the payload is only a hint. Not a task per delivery: the delivery wakes its
   connection's drain unless one is pending (services/inbound_wakeup.py), so a burst costs one
   INSERT per delivery and one task per connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.db import connection as db
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import HttpHeaders
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from returns.platforms.parsing import UntrustedJsonError, load_untrusted_json

from ..models import Connection, WebhookEvent
from ..models.webhooks import stuck_after
from ..tasks import process_inbound_event, wake_inbound
from .routes import connection_for

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

    def check(self) -> None:
        """Hints are stored in text columns: a NUL character (from a `\\u0000` escape)
        would fail the write, so it is refused like any other malformed input."""
        for value in (self.event, self.resource_type, self.resource_ids, self.dedupe_key):
            if "\x00" in value:
                raise Rejected("The event names a value with a NUL character.")


@method_decorator(
    [csrf_exempt, login_not_required, transaction.non_atomic_requests], name="dispatch"
)
class WebhookView(View):
    source: str = ""
    http_method_names = ["post"]
    # The connection's columns the view reads (None: all). Each encrypted column loaded is
    # decrypted, so a source that needs only the URL secret and a few plain fields says so.
    connection_fields: tuple[str, ...] | None = None

    # --- what a source declares --------------------------------------------------------------
    def routed(self, connection: Connection) -> bool:
        """Whether this route serves the connection (else 404, nothing stored)."""
        return True

    def verify(self, request: HttpRequest, connection: Connection, body: bytes) -> None:
        """Raise Rejected when the delivery is not authentic (beyond the URL secret)."""

    def parse(self, connection: Connection, body: bytes) -> Parsed:
        raise NotImplementedError

    # --- the shared flow ---------------------------------------------------------------------
    def post(self, request: HttpRequest, connection_id: int, secret: str) -> HttpResponse:
        connection = connection_for(connection_id, secret, self.connection_fields)
        if connection is None or not self.routed(connection):
            return HttpResponse(status=404)
        limit = settings.WEBHOOK_MAX_BODY_BYTES
        declared = _content_length(request)
        body = request.body if declared <= limit else b""
        oversized = declared > limit or len(body) > limit
        event = WebhookEvent(
            connection=connection,
            source=self.source,
            remote_addr=request.META.get("REMOTE_ADDR") or None,
            headers=_kept_headers(request),
            body=storable_text(body[:limit]),
        )
        try:
            if oversized:
                raise Rejected(f"Body larger than {limit} bytes.", status=413)
            if not connection.enabled:
                raise Rejected("The connection is disabled.", status=409)
            if b"\x00" in body:
                raise Rejected("Body contains a NUL byte.")
            self.verify(request, connection, body)
            parsed = self.parse(connection, body)
            parsed.check()
        except Rejected as exc:
            _store_ended(event, WebhookEvent.Status.REJECTED, str(exc))
            return JsonResponse({"error": str(exc)}, status=exc.status)
        except Exception as exc:  # recorded, then a 5xx so the sender retries
            logger.exception("webhook for connection %s failed", connection.pk)
            _store_ended(event, WebhookEvent.Status.FAILED, f"{exc.__class__.__name__}: {exc}")
            return JsonResponse({"error": "internal error"}, status=500)

        original = _store_claiming_key(event, parsed)
        if original is not None:
            return JsonResponse({"received": event.pk, "duplicate": True}, status=202)
        transaction.on_commit(lambda: wake(connection, event.pk))
        return JsonResponse({"received": event.pk, "duplicate": False}, status=202)


def _store_ended(event: WebhookEvent, status: str, reason: str) -> None:
    """A delivery that is not processed, stored as it came with the reason: one INSERT."""
    event.status, event.error, event.next_attempt_at = status, reason[:2000], None
    event.processed_at = timezone.now() if status == WebhookEvent.Status.FAILED else None
    event.save()


def _content_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


# (name as stored, WSGI environ key): read straight from the environ, not through
# `request.headers`, which parses every header of the request (a tenth of a delivery's time).
_KEPT_META = tuple((name.title(), HttpHeaders.to_wsgi_name(name)) for name in KEPT_HEADERS)


def _kept_headers(request: HttpRequest) -> dict:
    meta = request.META
    kept = ((name, meta[key]) for name, key in _KEPT_META if key in meta)
    return {name: storable_text(_header_bytes(value)) for name, value in kept}


def _header_bytes(value) -> bytes:
    """A header as the sender's bytes: a WSGI server hands them over decoded as ISO-8859-1
    (PEP 3333), so a UTF-8 user agent is stored as it was sent, not as mojibake."""
    try:
        return str(value).encode("latin-1")
    except UnicodeEncodeError:  # not from a WSGI server (a test client given any text)
        return str(value).encode("utf-8", "surrogateescape")


def storable_text(raw: bytes) -> str:
    """The raw bytes as text any database stores: invalid UTF-8 and NUL bytes (which
    PostgreSQL text refuses) are escaped (`\\x00`), so the event is kept as it came."""
    return raw.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def _store_claiming_key(event: WebhookEvent, parsed: Parsed) -> WebhookEvent | None:
    """Store the event with its parsed hints and its dedupe key in one INSERT (one commit per
    delivery). The unique constraint makes claiming the key atomic: when another row already
    holds it, the INSERT fails inside a savepoint and this delivery is stored as a duplicate of
    that first row, which is returned. If the first one never finished (failed, or stuck with
    nobody working on it), it is queued again."""
    event.event = parsed.event[:100]
    event.resource_type = parsed.resource_type[:50]
    event.resource_ids = parsed.resource_ids
    event.dedupe_key = parsed.dedupe_key[:200]
    try:
        if db.in_atomic_block:  # a savepoint, so a refused INSERT spoils nothing around it
            with transaction.atomic():
                event.save()
        else:  # autocommit: the INSERT is its own transaction, committed or refused alone
            event.save()
        return None
    except IntegrityError:
        if not event.dedupe_key:
            raise
    original = (
        WebhookEvent.objects.filter(
            connection_id=event.connection_id, source=event.source, dedupe_key=event.dedupe_key
        )
        .exclude(pk=event.pk)
        .first()
    )
    if original is None:  # not a duplicate after all (another constraint): a 5xx, retried
        raise IntegrityError(f"could not store the event with key {event.dedupe_key!r}")
    again = original.redelivered()
    event.pk, event.dedupe_key, event.duplicate_of = None, "", original
    event.status, event.next_attempt_at = WebhookEvent.Status.DUPLICATE, None
    event.error = f"Same event as #{original.pk}" + (
        ", which had not finished: processing it again." if again else "."
    )
    event.save()
    if again:
        transaction.on_commit(lambda: dispatch(original.pk))
    return original


def wake(connection: Connection, event_id: int) -> None:
    """The stored event is processed by its connection's drain: queue one unless one is
    pending (services/inbound_wakeup.py). If the broker refuses, see `_queue_failed`."""
    try:
        wake_inbound(connection)
    except Exception as exc:  # whatever the broker client raises: recorded, then re-raised
        _queue_failed(event_id, exc)
        raise


def dispatch(event_id: int) -> None:
    """Queue processing of one event (a redelivery of an event that never finished). If the
    broker refuses, see `_queue_failed`."""
    try:
        process_inbound_event.delay(event_id)
    except Exception as exc:  # whatever the broker client raises: recorded, then re-raised
        _queue_failed(event_id, exc)
        raise


def _queue_failed(event_id: int, exc: Exception) -> None:
    """The broker refused: the event stays `received` and is made overdue (housekeeping
    dispatches it once the broker is back, and so does a redelivery); the caller re-raises,
    so the view answers 5xx and the sender delivers again."""
    WebhookEvent.objects.filter(pk=event_id, status=WebhookEvent.Status.RECEIVED).update(
        error=f"Could not queue processing: {type(exc).__name__}: {exc}"[:2000],
        next_attempt_at=timezone.now() - stuck_after(),  # overdue: dispatched again
    )


def parse_json_object(body: bytes) -> dict:
    try:
        data = load_untrusted_json(body)
    except UntrustedJsonError as exc:
        raise Rejected(str(exc)) from None
    if not isinstance(data, dict):
        raise Rejected("Body must be a JSON object.")
    return data
