"""Processing of stored Brightpearl webhook events: find which of our credits an event concerns,
then run the receipt step for exactly those credits.

The body is only a hint (Brightpearl signs nothing): the event's IDs are re-fetched, and the work
is done by `receipts.update_receipts` — the same code path as polling — so a duplicate, a replay
or an out-of-order delivery ends in the same state as one timely delivery. Events about orders
or notes that are not ours end `ignored`, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.utils import timezone

from brightpearl import (
    BrightpearlError,
    BudgetSpent,
    ServerError,
    ThrottledError,
    TransportError,
    format_id_set,
    parse_id_set,
)

from ..models import BindingState, SalesCredit, SyncRun, WebhookEvent
from .context import SyncContext
from .event_outcomes import GiveUp, Outcome, RetryLater
from .leases import run_heartbeat
from .receipts import OPEN_STATUSES, quarantine_holders, update_receipts

# Errors worth another try: no answer, a 5xx, or throttling that outlasted the client's waits.
TRANSIENT_ERRORS = (TransportError, ServerError, ThrottledError)

# More than this many IDs in one delivery is not a Brightpearl event (it sends one event per
# change; an ID set groups a batch); refusing keeps a forged body from fanning out work.
MAX_IDS_PER_EVENT = 2000

GOODS_IN_CREATED = "goods-in-note.created"
ORDER_STATUS_MODIFIED = "order.modified.order-status"
QUARANTINE_RELEASE_CREATED = "quarantine-release.created"


@dataclass
class WebhookContext(SyncContext):
    """A SyncContext that remembers transient Brightpearl errors the receipt step recorded and
    carried on from, so the task can retry the event instead of leaving it to the next poll."""

    transient_errors: list[BaseException] = field(default_factory=list)

    def record(self, kind, outcome, message, *, rma=None, credit_id=None, error=None):
        if isinstance(error, TRANSIENT_ERRORS):
            self.transient_errors.append(error)
        return super().record(kind, outcome, message, rma=rma, credit_id=credit_id, error=error)


@dataclass
class Result:
    status: str  # a WebhookEvent.Status
    message: str
    run: SyncRun | None = None


def _ids_text(ids: Iterable[int]) -> str:
    ids = list(ids)
    return format_id_set(ids) if ids else "(none)"


def our_open_credits(connection, credit_ids: Iterable[int]) -> tuple[list[SalesCredit], str]:
    """Our created credits among `credit_ids` that still wait for receipts (as polling picks
    them), and why there are none when there are none."""
    credit_ids = sorted({int(i) for i in credit_ids if i})
    if not credit_ids:
        return [], "names no order"
    ours = list(
        SalesCredit.objects.filter(
            connection=connection, state=BindingState.CREATED, credit_id__in=credit_ids
        )
        .select_related("rma")
        .order_by("pk")
    )
    if not ours:
        return [], f"order(s) {_ids_text(credit_ids)} are not sales credits made by this connection"
    waiting = [b for b in ours if b.processed_at is None and b.rma.status in OPEN_STATUSES]
    if not waiting:
        done = _ids_text(b.credit_id for b in ours)
        return [], f"credit(s) {done} are already processed or closed; nothing to update"
    return waiting, ""


def credits_for_goods_in(ctx: SyncContext, ids: list[int]) -> tuple[list[SalesCredit], str]:
    notes = ctx.client.get_goods_in_notes(note_ids=ids)
    if not notes:
        return [], f"Brightpearl has no goods-in note {_ids_text(ids)}"
    orders = {int(n.get("orderId") or 0) for n in notes.values()}
    bindings, reason = our_open_credits(ctx.connection, orders)
    return bindings, reason and f"goods-in note(s) {_ids_text(ids)}: {reason}"


def credits_for_order_status(ctx: SyncContext, ids: list[int]) -> tuple[list[SalesCredit], str]:
    # Ownership is our own record; the receipt step then re-reads goods-in notes and statuses.
    return our_open_credits(ctx.connection, ids)


def credits_for_quarantine_release(
    ctx: SyncContext, ids: list[int]
) -> tuple[list[SalesCredit], str]:
    """A release moves stock of one product out of a warehouse's quarantine location; it names
    no order, and Brightpearl documents no GET for a release. So the event only says "look
    again": every credit of ours still holding quarantined units is re-read, and releases are
    attributed first in, first out from the goods movements (`receipts.release_fifo`)."""
    holders = quarantine_holders(ctx.connection)
    if not holders:
        return [], (
            f"quarantine release(s) {_ids_text(ids)}: no return of this connection holds "
            "quarantined units"
        )
    return holders, ""


FINDERS: dict[str, Callable[[SyncContext, list[int]], tuple[list[SalesCredit], str]]] = {
    GOODS_IN_CREATED: credits_for_goods_in,
    ORDER_STATUS_MODIFIED: credits_for_order_status,
    QUARANTINE_RELEASE_CREATED: credits_for_quarantine_release,
}


def handle(event: WebhookEvent) -> Outcome:
    """The inbound pipeline's handler for Brightpearl events: transient Brightpearl errors are
    retried later, other Brightpearl refusals (4xx) end the event failed."""
    try:
        result = process_event(event)
    except TRANSIENT_ERRORS as exc:
        raise RetryLater(f"Brightpearl: {exc}") from exc
    except BrightpearlError as exc:
        raise GiveUp(f"Brightpearl refused: {exc}") from exc
    # The reason matters for ignored events; a processed one's work is in its sync run.
    return Outcome(result.status, result.message)


def process_event(event: WebhookEvent) -> Result:
    """Do what one stored Brightpearl event asks. Raises a TRANSIENT_ERRORS error when a retry
    may succeed (after recording the run); other Brightpearl errors propagate as they are."""
    connection = event.connection
    finder = FINDERS.get(event.event)
    if finder is None:
        return Result(WebhookEvent.Status.IGNORED, f"Event {event.event!r} is not processed.")
    if not connection.enabled:
        return Result(WebhookEvent.Status.IGNORED, "The connection is disabled.")
    try:
        ids = parse_id_set(event.resource_ids, max_ids=MAX_IDS_PER_EVENT)
    except ValueError as exc:
        return Result(WebhookEvent.Status.IGNORED, f"No usable IDs: {exc}")

    ctx = WebhookContext(connection=connection)
    bindings, reason = finder(ctx, ids)
    if not bindings:
        return Result(WebhookEvent.Status.IGNORED, reason[:1].upper() + reason[1:] + ".")

    ctx.run = SyncRun.objects.create(
        connection=connection,
        trigger=SyncRun.Trigger.WEBHOOK,
        message=f"Brightpearl {event.event} {_ids_text(ids)} (webhook event {event.pk}).",
    )
    try:
        with run_heartbeat(ctx.run.pk):  # a worker lost mid-event leaves a row closed later
            update_receipts(ctx, bindings)
    except BudgetSpent as exc:  # the pipeline re-queues the event for when the budget is back
        _finish_run(ctx, paused=f" Paused: the account's {exc}.")
        raise
    except BaseException:
        _finish_run(ctx)  # closed now, not left "running" for the dispatcher to find
        raise
    _finish_run(ctx)
    if ctx.transient_errors:
        raise ctx.transient_errors[0]
    credits = _ids_text(b.credit_id for b in bindings)
    return Result(
        WebhookEvent.Status.PROCESSED, f"Receipts updated for credit(s) {credits}.", ctx.run
    )


def _finish_run(ctx: WebhookContext, paused: str = "") -> None:
    run = ctx.run
    failed = sum(v for k, v in ctx.counts.items() if k.endswith("_failed"))
    if paused:
        run.status = SyncRun.Status.PARTIAL
        run.message += paused
    elif failed:
        run.status = SyncRun.Status.PARTIAL
        run.message += f" {failed} item(s) failed; see the events."
    else:
        run.status = SyncRun.Status.SUCCEEDED
    run.counts = dict(ctx.counts)
    run.brightpearl_requests = ctx.requests_made
    run.finished_at = timezone.now()
    run.save()
