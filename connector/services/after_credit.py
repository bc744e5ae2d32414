"""Returns that change after their sales credit was made.

* **Ended** — cancelled, rejected or expired on the platform after the credit. With nothing
  received, paid or invoiced, the credit is moved to the connection's "cancelled" status with
  a note saying why (one Order Status Update PUT: Brightpearl adds the note with the change);
  with no such status configured it is left at its status with a "do not refund" note and the
  return is flagged for staff. Anything received, paid or invoiced: nothing is written, the
  return is flagged with exactly what stands in the way. Either way no refund is recorded on
  the credit afterwards (`refund_refusal`).
* **Edited** — lines added or removed, quantities changed: while nothing is received,
  invoiced or paid, the credit's rows are changed to the new plan (Order Row PATCH / POST /
  DELETE); otherwise the return is flagged with the reason.

Exactly once, as for credits and payments (`exactly_once.py`): each change is a `CreditChange`
binding, unique per (credit, key) — a redelivered cancellation or the same edit seen twice is
the same change. It is claimed before anything is written; after a lost answer its lease
keeps every other execution from writing until Brightpearl is read again (the credit's status,
rows and notes), and what is already there is adopted instead of written twice.

The step looks at the open credits 200 at a time (`chunks.each_chunk`) and keeps only the keys
of those to change, so its memory follows the chunk, not every credit still open.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from decimal import Decimal

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from brightpearl import (
    AuthError,
    BrightpearlError,
    BudgetSpent,
    NotFoundError,
    ThrottledError,
    TransportError,
)
from returns import lifecycle
from returns.models import Rma

from ..models import BindingState, CreditChange, RefundPayment, SalesCredit, SyncEvent
from . import exactly_once
from .chunks import each_chunk
from .context import SyncContext
from .credit_rows import capture_credit_rows
from .credit_rows_edit import planned_with_row_ids, row_operations, row_patch, row_post
from .credits import find_original_orders, plan_for
from .receipts import flag_rma

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome
ENDINGS = (lifecycle.CANCELLED, lifecycle.REJECTED)
RECEIVED_STOCK_STATUSES = ("SCP", "SCA")
PAID_STATUSES = ("PAID", "PARTIALLY_PAID")
DONE = list(exactly_once.DONE_STATES)


# --- which credits ---------------------------------------------------------------------------
def platform_ended(rma: Rma) -> bool:
    """The platform says the return is over without goods coming back (cancelled, rejected,
    expired) — whatever the neutral status kept (goods that arrived are not erased)."""
    return lifecycle.map_platform_status(rma.platform, rma.platform_status) in ENDINGS


def open_credits(connection, rmas: list[Rma] | None = None) -> QuerySet[SalesCredit]:
    """Credits made and not yet processed, whose return has not been settled as ended (read a
    chunk at a time: `chunks.each_chunk`)."""
    settled = CreditChange.objects.filter(
        sales_credit=OuterRef("pk"), kind=CreditChange.Kind.CANCEL, state__in=DONE
    )
    query = (
        SalesCredit.objects.filter(
            connection=connection,
            state=BindingState.CREATED,
            credit_id__isnull=False,
            processed_at__isnull=True,
        )
        .exclude(rma__status__in=[lifecycle.PROCESSED, lifecycle.CLOSED])
        .exclude(Exists(settled))
    )
    if rmas is not None:
        query = query.filter(rma__in=rmas)
    return _with_lines(query)


def _with_lines(query: QuerySet[SalesCredit]) -> QuerySet[SalesCredit]:
    return query.select_related("rma").prefetch_related("rma__lines")


def line_quantities(binding: SalesCredit) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """(credited, wanted now): units per RMA line on the credit, and on the return."""
    credited: dict[str, Decimal] = defaultdict(Decimal)
    for row in binding.planned_rows or []:
        if row.get("line_id") is not None:
            credited[str(row["line_id"])] += Decimal(str(row.get("quantity") or 0))
    wanted = {str(line.pk): Decimal(line.quantity) for line in binding.rma.lines.all()}
    return dict(credited), {k: v for k, v in wanted.items() if v > 0}


def lines_edited(binding: SalesCredit) -> bool:
    credited, wanted = line_quantities(binding)
    return bool(credited) and credited != wanted


def settle_changes(ctx: SyncContext, rmas: list[Rma] | None = None) -> list[str]:
    """The sync step: every open credit whose return ended or was edited on the platform.

    The open credits are looked at a chunk at a time and only the keys of those to change are
    kept; then the ended ones are settled, then the edited ones (each in primary-key order, as
    when every open credit was read at once), read again a chunk at a time."""
    if ctx.dry_run or not ctx.connection.create_credits:
        return []
    ended: list[int] = []
    edited: list[int] = []

    def sort_out(chunk: list[SalesCredit]) -> None:
        for binding in chunk:
            if platform_ended(binding.rma):
                ended.append(binding.pk)
            elif lines_edited(binding):
                edited.append(binding.pk)

    if not each_chunk(open_credits(ctx.connection, rmas), sort_out):
        return []
    for keys, act in ((ended, end_credit), (edited, adjust_credit)):
        if keys:
            query = _with_lines(SalesCredit.objects.filter(pk__in=keys))
            each_chunk(query, lambda chunk, act=act: _settle(ctx, chunk, act))
    return [f"{len(ended)} ended and {len(edited)} edited return(s) settled"]


def _settle(ctx: SyncContext, bindings: list[SalesCredit], act) -> None:
    for binding in bindings:
        try:
            act(ctx, binding)
        except AuthError:
            raise
        except BrightpearlError as exc:
            kind = Kind.ENDED if act is end_credit else Kind.ADJUST
            ctx.record(
                kind,
                Outcome.FAILED,
                f"Brightpearl error: {exc}; tried again next run.",
                rma=binding.rma,
                credit_id=binding.credit_id,
                error=exc,
            )


# --- what stands in the way ------------------------------------------------------------------
def obstacles(binding: SalesCredit, order: dict | None) -> list[str]:
    """Why the credit must not be changed by the connector: goods received, a payment
    recorded, the credit invoiced — in words finance can act on. Empty: safe to change."""
    if order is None:
        return [f"sales credit {binding.credit_id} was not found in Brightpearl"]
    found = []
    received = [
        f"{line.quantity_received} × {line.sku or line.title}"
        for line in binding.rma.lines.all()
        if line.quantity_received
    ]
    stock = str(order.get("stockStatusCode") or "")
    if received:
        found.append(f"Brightpearl already received {', '.join(received)} against it")
    elif stock in RECEIVED_STOCK_STATUSES:
        found.append(f"Brightpearl already received goods against it (stock status {stock})")
    payments = list(
        RefundPayment.objects.filter(sales_credit=binding, state=BindingState.CREATED).values_list(
            "payment_id", flat=True
        )
    )
    if payments:
        found.append(
            f"a refund is already recorded on it (payment {', '.join(map(str, payments))})"
        )
    elif str(order.get("orderPaymentStatus") or "") in PAID_STATUSES:
        found.append(f"a payment is already recorded on it ({order['orderPaymentStatus']})")
    invoiced = any((i or {}).get("invoiceReference") for i in order.get("invoices") or [])
    if binding.closed_at or invoiced:
        found.append("it is already invoiced (closed)")
    return found


def _order(ctx: SyncContext, credit_id: int) -> dict | None:
    orders = ctx.client.get_orders([credit_id])
    return next((o for o in orders if int(o["id"]) == int(credit_id)), None)


def _status_of(order: dict | None) -> int | None:
    if order is None:
        return None
    return int((order.get("orderStatus") or {}).get("orderStatusId") or 0)


def _flag_here(ctx: SyncContext, rma: Rma, reason: str) -> None:
    """Flag for staff in the connector only: the platform has already ended the return."""
    Rma.objects.filter(pk=rma.pk).update(flagged=True, flag_reason=reason)
    rma.flagged, rma.flag_reason = True, reason


def _change(ctx: SyncContext, binding: SalesCredit, kind: str, key: str, summary: str):
    change, _ = CreditChange.objects.get_or_create(
        sales_credit=binding,
        key=key,
        defaults={
            "connection": ctx.connection,
            "account_key": binding.account_key,
            "kind": kind,
            "summary": summary,
        },
    )
    return change


def _claim(ctx: SyncContext, change: CreditChange, kind: str, rma: Rma) -> CreditChange | None:
    claim = exactly_once.claim(CreditChange, change.pk, ctx.owner)
    if claim.wait_until is not None:
        ctx.retry_at = max(ctx.retry_at or claim.wait_until, claim.wait_until)
        ctx.record(
            kind,
            Outcome.SKIPPED,
            "An earlier attempt to change this credit may still be finishing in Brightpearl; "
            f"nothing is sent again until {timezone.localtime(claim.wait_until):%H:%M:%S}, "
            "when the credit is read first.",
            rma=rma,
        )
    return claim.binding


def _write_failed(ctx, change, kind, binding, exc: BrightpearlError) -> None:
    """A write's error: unknown outcome → lease and follow-up; not sent → pending; refused →
    failed, and staff are told."""
    rma = binding.rma
    if exactly_once.is_unknown_outcome(exc):
        exactly_once.outcome_unknown(change, exc)
        until = exactly_once.lease_end(change)
        if until is not None:
            ctx.retry_at = max(ctx.retry_at or until, until)
        ctx.record(
            kind,
            Outcome.FAILED,
            f"Brightpearl did not confirm the change to credit {binding.credit_id} ({exc}); "
            "the credit is read again before anything is sent twice.",
            rma=rma,
            credit_id=binding.credit_id,
            error=exc,
        )
        return
    if isinstance(exc, ThrottledError | TransportError):
        exactly_once.not_written(change, str(exc))
        ctx.record(kind, Outcome.FAILED, f"Brightpearl was busy: {exc}", rma=rma, error=exc)
        return
    reason = f"Brightpearl refused to change credit {binding.credit_id}: {exc}. {change.summary}"
    exactly_once.refused(change, reason)
    _flag_here(ctx, rma, reason)
    ctx.record(kind, Outcome.FAILED, reason, rma=rma, credit_id=binding.credit_id, error=exc)


# --- ended -----------------------------------------------------------------------------------
def ended_words(connection, rma: Rma) -> str:
    status = rma.platform_status or rma.status
    return (
        f"{connection.get_platform_display()} return {rma.rma_number or rma.external_id} "
        f"ended on the platform ({status})"
    )


def end_credit(ctx: SyncContext, binding: SalesCredit) -> None:
    rma, connection = binding.rma, ctx.connection
    why = ended_words(connection, rma)
    status_id = connection.cancelled_credit_status_id
    note = (
        f"{why} after this credit was made; nothing was received or paid. "
        + ("Cancelled" if status_id else "Noted")
        + " by the returns connector: do not refund this credit."
    )
    change = _change(ctx, binding, CreditChange.Kind.CANCEL, "cancel", note)
    if change.state in DONE:
        return
    order = _order(ctx, binding.credit_id)
    if status_id and _status_of(order) == status_id:
        return _ended_done(ctx, binding, change, adopted=True)
    blockers = obstacles(binding, order)
    if blockers:
        reason = (
            f"{why} after sales credit {binding.credit_id} was made, but "
            + "; ".join(blockers)
            + ". The credit was left as it is: decide whether to refund the customer or to "
            "return or write off the goods, then cancel the credit in Brightpearl."
        )
        exactly_once.blocked(change, reason)
        _flag_here(ctx, rma, reason)
        ctx.record(Kind.ENDED, Outcome.FLAGGED, reason, rma=rma, credit_id=binding.credit_id)
        return
    claimed = _claim(ctx, change, Kind.ENDED, rma)
    if claimed is None:
        return
    # A spent budget before the write's answer sent nothing: no lease; the credit is read first.
    with exactly_once.budget_pause(claimed, sent_before=True):
        _send_ending(ctx, binding, claimed, status_id, note)


def _send_ending(ctx: SyncContext, binding: SalesCredit, claimed, status_id, note: str) -> None:
    if not status_id and _note_there(ctx, binding.credit_id, note):
        return _ended_done(ctx, binding, claimed, adopted=True)
    try:
        if status_id:
            ctx.client.update_order_status(binding.credit_id, status_id, note)
        else:
            ctx.client.add_order_note(binding.credit_id, note)
    except AuthError:
        exactly_once.not_written(claimed, "Brightpearl refused the credentials.")
        raise
    except BrightpearlError as exc:
        if exactly_once.is_unknown_outcome(exc) and _ended_there(ctx, binding, status_id, note):
            return _ended_done(ctx, binding, claimed, adopted=True)
        return _write_failed(ctx, claimed, Kind.ENDED, binding, exc)
    _ended_done(ctx, binding, claimed, adopted=False)


def _note_there(ctx: SyncContext, credit_id: int, text: str) -> bool:
    return any(
        str(row.get("noteText") or "") == text
        for row in ctx.client.search_order_notes(orderId=credit_id)
    )


def _ended_there(ctx: SyncContext, binding: SalesCredit, status_id, note: str) -> bool:
    """After a lost answer: did the change land? (Read quietly; unknown counts as no.)"""
    try:
        if status_id:
            return _status_of(_order(ctx, binding.credit_id)) == status_id
        return _note_there(ctx, binding.credit_id, note)
    except (BrightpearlError, BudgetSpent):
        return False


def _ended_done(ctx: SyncContext, binding: SalesCredit, change, *, adopted: bool) -> None:
    exactly_once.succeeded(change)
    rma, status_id = binding.rma, ctx.connection.cancelled_credit_status_id
    if status_id:
        message = (
            f"{ended_words(ctx.connection, rma)} after its credit: sales credit "
            f"{binding.credit_id} "
            + ("was already in" if adopted else "moved to")
            + f" the cancelled status {status_id} with a note saying why. No refund will be "
            "recorded on it."
        )
        ctx.record(Kind.ENDED, Outcome.SUCCEEDED, message, rma=rma, credit_id=binding.credit_id)
        return
    reason = (
        f"{ended_words(ctx.connection, rma)} after sales credit {binding.credit_id} was made. "
        "No status for cancelled returns' credits is configured, so the credit keeps its status "
        "with a note 'do not refund'; cancel it in Brightpearl (or set that status on the "
        "connection). No refund will be recorded on it."
    )
    _flag_here(ctx, rma, reason)
    ctx.record(Kind.ENDED, Outcome.FLAGGED, reason, rma=rma, credit_id=binding.credit_id)


def refund_refusal(binding: SalesCredit) -> str:
    """Why no refund may be recorded on this credit (its return ended), or ''."""
    change = (
        CreditChange.objects.filter(sales_credit=binding, kind=CreditChange.Kind.CANCEL)
        .exclude(state=BindingState.PENDING)
        .first()
    )
    if change is None:
        return ""
    return (
        f"Not recorded: the return ended on the platform after sales credit "
        f"{binding.credit_id} was made ({change.get_state_display().lower()}: "
        f"{change.last_error or change.summary}). A refund on it would pay out a cancelled "
        "credit; check with the platform why it refunded."
    )


# --- edited ----------------------------------------------------------------------------------
def _quantities_text(quantities: dict[str, Decimal], lines: dict[str, object]) -> str:
    parts = [
        f"{q.normalize()} × {getattr(lines.get(k), 'sku', '') or 'line ' + k}"
        for k, q in sorted(quantities.items())
    ]
    return ", ".join(parts) or "nothing"


def adjust_credit(ctx: SyncContext, binding: SalesCredit) -> None:
    rma = binding.rma
    credited, wanted = line_quantities(binding)
    lines = {str(line.pk): line for line in rma.lines.all()}
    edit = (
        f"{ctx.connection.get_platform_display()} return {rma.rma_number or rma.external_id} "
        f"was edited after sales credit {binding.credit_id} was made (now "
        f"{_quantities_text(wanted, lines)}; credited {_quantities_text(credited, lines)})"
    )
    key = (
        "adjust:"
        + hashlib.sha256(
            json.dumps({k: str(v) for k, v in sorted(wanted.items())}).encode()
        ).hexdigest()[:24]
    )
    change = _change(ctx, binding, CreditChange.Kind.ADJUST, key, edit + ".")
    if change.state in DONE or _earlier_in_flight(ctx, binding, change):
        return
    claimed = _claim(ctx, change, Kind.ADJUST, rma)
    if claimed is None:
        return
    # A spent budget mid-way (even between two row writes: each had its answer) leaves no
    # lease: the next attempt reads the credit and writes only what is still missing.
    with exactly_once.budget_pause(claimed, sent_before=True):
        _adjust_claimed(ctx, binding, claimed, edit)


def _adjust_claimed(ctx: SyncContext, binding: SalesCredit, claimed, edit: str) -> None:
    rma = binding.rma
    if binding.planned_rows and not binding.row_map:
        # The run that made the credit stopped before reading its rows back: without them
        # the edit cannot tell which row is which line, so they are read now (or next run).
        capture_credit_rows(ctx, [binding])
        if not binding.row_map:
            exactly_once.not_written(claimed, "The credit's rows are not read back yet.")
            return
    order = _order(ctx, binding.credit_id)  # read fresh: the search before every write
    blockers = obstacles(binding, order)
    if not blockers:
        original = find_original_orders(ctx, [rma]).get(rma.pk)
        plan = plan_for(ctx, rma, original, binding) if original else None
        if plan is None or not plan.ok:
            blockers = plan.problems if plan else ["the original order was not found"]
    if blockers:
        reason = f"{edit}, but " + "; ".join(blockers) + ". Adjust the credit by hand."
        exactly_once.blocked(claimed, reason)
        flag_rma(ctx, rma, reason, binding=binding)
        return
    _apply_adjustment(ctx, binding, claimed, order, plan, edit)


def _earlier_in_flight(ctx: SyncContext, binding: SalesCredit, change: CreditChange) -> bool:
    """An earlier edit's write may still be executing: wait for its lease (then this edit
    reads the credit and adopts whatever landed). Older edits are superseded by this one."""
    now = timezone.now()
    for other in CreditChange.objects.filter(
        sales_credit=binding, kind=CreditChange.Kind.ADJUST, state=BindingState.ATTEMPTING
    ).exclude(pk=change.pk):
        until = exactly_once.lease_end(other)
        if until is not None and until > now:
            ctx.retry_at = max(ctx.retry_at or until, until)
            return True
        exactly_once.refused(other, "Superseded by a later edit of the return.")
    return False


def _apply_adjustment(ctx, binding, change, order, plan, edit: str) -> None:
    desired = [{"line_id": r.line_id, **r.payload} for r in plan.rows if r.line_id is not None]
    old = planned_with_row_ids(binding.planned_rows or [], binding.row_map or {})
    ops, row_ids = row_operations(old, desired, order.get("orderRows") or {})
    done = []
    try:
        for op, row_id, row in ops:
            if op == "patch":
                ctx.client.patch_order_row(binding.credit_id, row_id, row_patch(row))
            elif op == "post":
                row_ids[row["externalRef"]] = ctx.client.add_order_row(
                    binding.credit_id, row_post(row)
                )
            else:
                _delete_row(ctx, binding.credit_id, row_id)
            done.append(op)
    except AuthError:
        exactly_once.not_written(change, "Brightpearl refused the credentials.")
        raise
    except BrightpearlError as exc:
        return _write_failed(ctx, change, Kind.ADJUST, binding, exc)
    _store_adjusted(binding, plan, desired, row_ids)
    exactly_once.succeeded(change)
    counts = {op: done.count(op) for op in ("patch", "post", "delete") if op in done}
    ctx.record(
        Kind.ADJUST,
        Outcome.SUCCEEDED,
        f"{edit}: nothing was received or invoiced, so the credit was adjusted ("
        + (
            ", ".join(
                f"{n} row(s) {dict(patch='changed', post='added', delete='removed')[op]}"
                for op, n in counts.items()
            )
            or "its rows already matched"
        )
        + ").",
        rma=binding.rma,
        credit_id=binding.credit_id,
    )


def _delete_row(ctx: SyncContext, credit_id: int, row_id: int) -> None:
    try:
        ctx.client.delete_order_row(credit_id, row_id)
    except NotFoundError:
        pass  # already gone: a lost answer's delete landed


def _store_adjusted(binding: SalesCredit, plan, desired: list[dict], row_ids: dict) -> None:
    fees = [r for r in binding.planned_rows or [] if r.get("line_id") is None]
    planned, row_map = [], defaultdict(list)
    for row in desired:
        row_id = row_ids[row["externalRef"]]
        planned.append({**row, "rowId": row_id})
        row_map[str(row["line_id"])].append(int(row_id))
    binding.planned_rows = planned + fees
    binding.row_map = dict(row_map)
    binding.order_row_units = {str(k): str(v) for k, v in plan.order_row_units.items()}
    binding.order_row_money = {
        str(k): [str(net), str(tax)] for k, (net, tax) in plan.order_row_money.items()
    }
    binding.save(
        update_fields=[
            "planned_rows",
            "row_map",
            "order_row_units",
            "order_row_money",
            "updated_at",
        ]
    )
