"""Brightpearl resource-event webhooks.

Brightpearl signs nothing (brightpearl-api.md §9.4): the per-connection secret in the URL is the
only authentication, so the body is a hint and processing re-fetches what it names. The body is
the JSON template the connector registers (see services/subscriptions.py); `id` is an ID set.
"""

from __future__ import annotations

from brightpearl.idset import IdSetTooLarge, format_id_set, parse_id_set

from ..models import Connection, WebhookEvent
from ..services.brightpearl_events import MAX_IDS_PER_EVENT
from .base import Parsed, Rejected, WebhookView, parse_json_object

# The events the connector subscribes to and knows how to process.
SUPPORTED_EVENTS = frozenset(
    {"goods-in-note.created", "order.modified.order-status", "quarantine-release.created"}
)


def parse_brightpearl_body(connection: Connection, body: bytes) -> Parsed:
    data = parse_json_object(body)
    account = str(data.get("accountCode") or "").strip()
    if not account:
        raise Rejected("accountCode is missing.")
    if account.casefold() != (connection.brightpearl_account or "").strip().casefold():
        raise Rejected("accountCode is not this connection's Brightpearl account.")
    full_event = str(data.get("fullEvent") or "").strip()
    if not full_event:
        # Older templates may omit fullEvent: rebuild it from its parts when they are there.
        parts = [str(data.get(k) or "").strip() for k in ("resourceType", "lifecycleEvent")]
        full_event = ".".join(p for p in parts if p)
    if full_event not in SUPPORTED_EVENTS:
        raise Rejected(f"Unsupported event {full_event[:100]!r}.")
    raw_ids = data.get("id")
    try:
        ids = parse_id_set(
            raw_ids if isinstance(raw_ids, int | str) else "", max_ids=MAX_IDS_PER_EVENT
        )
    except IdSetTooLarge:
        raise Rejected(f"id names more than {MAX_IDS_PER_EVENT} resources.") from None
    except ValueError as exc:
        raise Rejected(f"id is not a valid ID set: {exc}") from None
    id_set = format_id_set(ids)
    raised_on = str(data.get("raisedOn") or "").strip()
    return Parsed(
        event=full_event,
        resource_type=str(data.get("resourceType") or full_event.partition(".")[0]),
        resource_ids=id_set,
        # A redelivery of the same event (QoS 1 retries) carries the same raisedOn.
        dedupe_key=f"{full_event}|{id_set}|{raised_on}" if raised_on else "",
    )


class BrightpearlWebhookView(WebhookView):
    source = WebhookEvent.Source.BRIGHTPEARL
    # The URL secret, whether the connection is on, its account code (checked against the
    # body's) and what the drain's wake-up marker names: one decryption, not every secret's.
    connection_fields = ("id", "webhook_secret", "enabled", "brightpearl_account", "created_at")

    def parse(self, connection: Connection, body: bytes) -> Parsed:
        return parse_brightpearl_body(connection, body)
