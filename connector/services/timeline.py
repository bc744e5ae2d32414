"""One return, end to end: everything the connector knows about an RMA as one list in time order
(received from the platform, webhooks that arrived about it, each step's outcome from the sync
log), what should happen next, and where it can be looked at in Brightpearl.

Read-only; the admin renders it (connector/admin/timeline.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Q

from returns import lifecycle
from returns.models import Rma

from ..models import BindingState, Problem, RefundPayment, SalesCredit, SyncEvent, WebhookEvent

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome
WEBHOOK_IN_RUN = re.compile(r"webhook event (\d+)")
TONE = {
    Outcome.SUCCEEDED: "green",
    Outcome.FAILED: "red",
    Outcome.FLAGGED: "amber",
    Outcome.SKIPPED: "grey",
}
MAX_ENTRIES = 300


@dataclass
class Entry:
    at: datetime
    title: str
    detail: str = ""
    tone: str = "grey"
    link: str = ""  # a Brightpearl page, when the entry names a Brightpearl document
    link_text: str = ""


@dataclass
class Timeline:
    rma: Rma
    entries: list[Entry] = field(default_factory=list)
    next_step: str = ""
    credit: SalesCredit | None = None
    payments: list[RefundPayment] = field(default_factory=list)
    open_problems: list[Problem] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, URL) in Brightpearl


def brightpearl_order_url(connection, order_id: int | None) -> str:
    """Brightpearl's own page for an order or a sales credit (both are orders there). The
    pattern is `BRIGHTPEARL_UI_ORDER_URL` (docs: README settings); empty = no links."""
    template = getattr(settings, "BRIGHTPEARL_UI_ORDER_URL", "")
    if not template or not order_id:
        return ""
    return template.format(
        datacentre=connection.brightpearl_datacentre,
        account=connection.brightpearl_account,
        id=int(order_id),
        order_id=int(order_id),  # the same, under the name an older setting used
    )


def build(rma: Rma) -> Timeline:
    connection = rma.connection
    timeline = Timeline(rma=rma)
    timeline.credit = SalesCredit.objects.filter(rma=rma).first()
    timeline.payments = list(
        RefundPayment.objects.filter(refund__rma=rma).select_related("refund").order_by("pk")
    )
    timeline.open_problems = list(
        Problem.objects.filter(rma=rma, state=Problem.State.OPEN).order_by("-last_seen_at")
    )
    received = rma.platform_created_at or rma.created_at
    lines = list(rma.lines.all())
    units = sum(line.quantity for line in lines)
    timeline.entries.append(
        Entry(
            at=received,
            title=f"Return received from {rma.get_platform_display()}",
            detail=f"Order {rma.order_name or rma.order_id or '?'}: {units} unit(s) of "
            f"{len(lines)} item(s). Platform status: {rma.platform_status or '?'}.",
            tone="green",
        )
    )
    events = list(
        SyncEvent.objects.filter(rma=rma)
        .select_related("run")
        .order_by("created_at", "pk")[:MAX_ENTRIES]
    )
    timeline.entries += [_event_entry(connection, event) for event in events]
    timeline.entries += _webhook_entries(rma, events)
    timeline.entries.sort(key=lambda entry: entry.at)
    timeline.next_step = next_step(rma, timeline.credit, lines, timeline.payments)
    if timeline.credit is not None:
        for text, order_id in (
            (f"Sales credit {timeline.credit.credit_id} in Brightpearl", timeline.credit.credit_id),
            (
                f"Original order {timeline.credit.parent_order_id} in Brightpearl",
                timeline.credit.parent_order_id,
            ),
        ):
            url = brightpearl_order_url(connection, order_id)
            if url:
                timeline.links.append((text, url))
    return timeline


def _event_entry(connection, event: SyncEvent) -> Entry:
    via = ""
    if event.run is not None and event.run.trigger == event.run.Trigger.WEBHOOK:
        via = " (after a webhook)"
    title = f"{event.get_kind_display()}: {event.get_outcome_display().lower()}{via}"
    entry = Entry(at=event.created_at, title=title, detail=event.message, tone=TONE[event.outcome])
    if event.credit_id and event.kind in (Kind.CREDIT, Kind.REFUND, Kind.GOODS_IN, Kind.CLOSE):
        entry.link = brightpearl_order_url(connection, event.credit_id)
        entry.link_text = f"credit {event.credit_id} in Brightpearl"
    return entry


def _webhook_entries(rma: Rma, events: list[SyncEvent]) -> list[Entry]:
    """Webhooks that concern this return: Brightpearl's (named by the runs they caused) and
    the platform's (whose body names the return's ID)."""
    ids = {
        int(match.group(1))
        for event in events
        if event.run is not None
        for match in [WEBHOOK_IN_RUN.search(event.run.message or "")]
        if match
    }
    query = Q(pk__in=ids)
    if rma.external_id:
        query |= Q(source=rma.platform, body__contains=f'"{rma.external_id}"')
    found = WebhookEvent.objects.filter(query, connection_id=rma.connection_id).order_by("pk")
    return [
        Entry(
            at=hook.received_at,
            title=f"Webhook from {hook.get_source_display()}: {hook.event or '(unparsed)'}",
            detail=f"{hook.get_status_display()}"
            + (f" — {hook.error}" if hook.error else "")
            + (f" (IDs {hook.resource_ids})" if hook.resource_ids else ""),
            tone="red" if hook.status == WebhookEvent.Status.FAILED else "blue",
        )
        for hook in found[:50]
    ]


def next_step(rma: Rma, credit: SalesCredit | None, lines, payments) -> str:
    """What should happen next, and who does it."""
    if rma.flagged:
        return (
            f"Needs staff: {(rma.flag_reason or 'flagged on the platform').rstrip('.')}. When "
            "the cause is "
            "fixed, use “Clear flag and retry”."
        )
    status = rma.status
    if status in (lifecycle.REJECTED, lifecycle.CANCELLED):
        return "Nothing to do: the platform ended this return."
    if status == lifecycle.REQUESTED:
        return "Waiting for the return to be approved on the platform."
    if credit is None or credit.state != BindingState.CREATED:
        if credit is not None and credit.state == BindingState.FAILED:
            return "The sales credit was refused by Brightpearl: fix the cause, then “Retry”."
        if not rma.connection.create_credits:
            return "Creating sales credits is switched off for this connection."
        return "Waiting for the sales credit to be created in Brightpearl (next sync)."
    if status in (lifecycle.CREDITED, lifecycle.PARTIALLY_RECEIVED):
        missing = [
            f"{line.quantity - line.quantity_received} × {line.sku}"
            for line in lines
            if line.quantity_received < line.quantity
        ]
        return (
            f"Waiting for the warehouse to receive {', '.join(missing) or 'the goods'} "
            f"against sales credit {credit.credit_id} in Brightpearl (a goods-in note)."
        )
    if status == lifecycle.RECEIVED:
        return "Everything arrived: the return is processed on the platform at the next sync."
    unpaid = [p for p in payments if p.state != BindingState.CREATED]
    if unpaid:
        return f"Recording {len(unpaid)} refund(s) as payments in Brightpearl (next sync)."
    if not payments:
        return "Waiting for the platform to refund the customer."
    return "Done: credited, received, processed and refunded."
