"""Brightpearl webhook subscriptions of a connection: registered by the connector, reconciled
against what Brightpearl holds, tested with Brightpearl's simulate call.

Ours are the subscriptions whose URI starts with this installation's webhook prefix for the
connection (`PUBLIC_BASE_URL/webhooks/brightpearl/<connection>/`); anything else in the account
belongs to someone else and is never touched. The URI carries the connection's secret, so every
URI shown or logged goes through `redact` first.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from brightpearl import BrightpearlClient, NotFoundError

from ..models import Connection, WebhookEvent
from ..models.connection import new_webhook_secret
from .brightpearl import client_for

EVENTS = (
    "goods-in-note.created",
    "order.modified.order-status",
    "quarantine-release.created",
)
# The body Brightpearl fills in for each delivery (brightpearl-api.md §9.2); the endpoint
# parses exactly these keys.
BODY_TEMPLATE = json.dumps(
    {
        "accountCode": "${account-code}",
        "resourceType": "${resource-type}",
        "id": "${resource-id}",
        "lifecycleEvent": "${lifecycle-event}",
        "fullEvent": "${full-event}",
        "raisedOn": "${raised-on}",
        "brightpearlVersion": "${brightpearl-version}",
    },
    separators=(",", ":"),
)
HIDDEN = "•••"


def url_prefix(connection: Connection) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/webhooks/brightpearl/{connection.pk}/"


def webhook_uri(connection: Connection) -> str:
    return f"{url_prefix(connection)}{connection.webhook_secret}/"


def redact(text: str, connection: Connection) -> str:
    """Hide the connection's secret (and any secret segment of one of our URIs)."""
    text = str(text or "")
    secret = connection.webhook_secret or ""
    if secret:
        text = text.replace(secret, HIDDEN)
    prefix = url_prefix(connection)
    if text.startswith(prefix):  # an old secret we no longer know
        rest = text[len(prefix) :]
        text = prefix + HIDDEN + ("/" + rest.split("/", 1)[1] if "/" in rest else "")
    return text


def desired(connection: Connection) -> dict[str, dict]:
    """The subscription payloads the connection needs, by event."""
    return {
        event: {
            "subscribeTo": event,
            "httpMethod": "POST",
            "uriTemplate": webhook_uri(connection),
            "bodyTemplate": BODY_TEMPLATE,
            "contentType": "application/json",
            "idSetAccepted": True,
            "qualityOfService": 1,
        }
        for event in EVENTS
    }


def is_ours(connection: Connection, hook: dict) -> bool:
    return str(hook.get("uriTemplate") or "").startswith(url_prefix(connection))


def _same(hook: dict, want: dict) -> bool:
    return (
        hook.get("subscribeTo") == want["subscribeTo"]
        and str(hook.get("httpMethod") or "").upper() == want["httpMethod"]
        and hook.get("uriTemplate") == want["uriTemplate"]
        and hook.get("bodyTemplate") == want["bodyTemplate"]
        and str(hook.get("contentType") or "").lower() == want["contentType"]
        and bool(hook.get("idSetAccepted")) is True
        and str(hook.get("qualityOfService")) == str(want["qualityOfService"])
    )


@dataclass
class Subscription:
    id: int
    event: str
    uri: str  # redacted
    state: str  # "ok", "stale" (ours, wrong or duplicate)


@dataclass
class Reconciliation:
    kept: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    removed: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.kept)} kept, {len(self.created)} created, {len(self.removed)} stale removed"
        )


def inspect(connection: Connection, client: BrightpearlClient | None = None) -> list[Subscription]:
    """Our subscriptions in Brightpearl and whether each is what we would register."""
    client = client or client_for(connection)
    wanted = desired(connection)
    seen: set[str] = set()
    out = []
    for hook in sorted(client.list_webhooks(), key=lambda h: int(h.get("id") or 0)):
        if not is_ours(connection, hook):
            continue
        event = str(hook.get("subscribeTo") or "")
        ok = event in wanted and event not in seen and _same(hook, wanted[event])
        if ok:
            seen.add(event)
        out.append(
            Subscription(
                int(hook["id"]),
                event,
                redact(hook.get("uriTemplate"), connection),
                "ok" if ok else "stale",
            )
        )
    return out


def register(connection: Connection, client: BrightpearlClient | None = None) -> Reconciliation:
    """Make Brightpearl hold exactly our needed subscriptions: keep the correct ones, create
    what is missing, then remove stale ones (wrong secret/body/event, duplicates) — in that
    order, so a secret rotation never leaves a moment with no subscription at all."""
    client = client or client_for(connection)
    result = Reconciliation()
    stale = []
    for sub in inspect(connection, client):
        if sub.state == "ok":
            result.kept[sub.event] = sub.id
        else:
            stale.append(sub.id)
    for event, payload in desired(connection).items():
        if event not in result.kept:
            result.created[event] = client.create_webhook(payload)
    for webhook_id in stale:
        try:
            client.delete_webhook(webhook_id)
        except NotFoundError:
            pass  # already gone
        result.removed.append(webhook_id)
    now = timezone.now()
    Connection.objects.filter(pk=connection.pk).update(webhooks_registered_at=now)
    connection.webhooks_registered_at = now
    return result


def remove(connection: Connection, client: BrightpearlClient | None = None) -> list[int]:
    """Delete every subscription of ours for this connection."""
    client = client or client_for(connection)
    removed = []
    for hook in client.list_webhooks():
        if is_ours(connection, hook):
            try:
                client.delete_webhook(int(hook["id"]))
            except NotFoundError:
                pass
            removed.append(int(hook["id"]))
    Connection.objects.filter(pk=connection.pk).update(webhooks_registered_at=None)
    connection.webhooks_registered_at = None
    return removed


def rotate_secret(connection: Connection, client: BrightpearlClient | None = None):
    """New random secret, then re-register (old-secret subscriptions are removed as stale).

    Deliveries already on their way with the old secret are answered 404 and not retried by
    Brightpearl; the polling sync picks up whatever they announced."""
    connection.webhook_secret = new_webhook_secret()
    connection.save(update_fields=["webhook_secret", "updated_at"])
    return register(connection, client)


@dataclass
class SendTestResult:
    webhook_id: int | None
    arrived: WebhookEvent | None
    message: str


def send_test(
    connection: Connection,
    client: BrightpearlClient | None = None,
    *,
    wait_seconds: float = 5.0,
    resource_id: str = "999999",
) -> SendTestResult:
    """Ask Brightpearl to fire one of our subscriptions (simulate) and wait for our endpoint to
    store the delivery. The test note ID names nothing of ours, so processing ignores it."""
    client = client or client_for(connection)
    subs = [s for s in inspect(connection, client) if s.state == "ok"]
    sub = next((s for s in subs if s.event == EVENTS[0]), subs[0] if subs else None)
    if sub is None:
        return SendTestResult(None, None, "No Brightpearl webhook is registered; register first.")
    started = timezone.now()
    client.simulate_webhook(sub.id, {"${resource-id}": resource_id})
    deadline = time.monotonic() + wait_seconds
    while True:
        arrived = (
            WebhookEvent.objects.filter(
                connection=connection,
                source=WebhookEvent.Source.BRIGHTPEARL,
                received_at__gte=started,
            )
            .order_by("pk")
            .first()
        )
        if arrived is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if arrived is None:
        return SendTestResult(
            sub.id,
            None,
            f"Brightpearl accepted the test of webhook {sub.id}, but nothing reached "
            f"{redact(webhook_uri(connection), connection)} within {wait_seconds:.0f} s: check "
            "PUBLIC_BASE_URL and that this server is reachable from the internet.",
        )
    verdict = (
        "and stored it" if arrived.status != WebhookEvent.Status.REJECTED else "but rejected it"
    )
    return SendTestResult(
        sub.id,
        arrived,
        f"Test delivery of webhook {sub.id} ({sub.event}) arrived: our endpoint answered "
        f"{verdict} as event {arrived.pk} ({arrived.get_status_display()}"
        + (f": {arrived.error}" if arrived.status == WebhookEvent.Status.REJECTED else "")
        + ").",
    )
