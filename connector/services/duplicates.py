"""Detect and heal what slipped through: two live credits for one return, two payments for one
refund.

`exactly_once.py` keeps the connector itself from writing twice. This check is the safety net
for everything else — another integration that credits the same return (Brightpearl's Shopify
app "create sales credits from returns"), history from before a fix, a fault nobody modelled.
It runs inside every sync but costs requests only when it is due: after credits or payments
were written (it then looks back a write lease, since a late write can land that long after it
was sent), and otherwise once an hour. Each look is one paged search of the credits (and, when
payments were written, the payments) created since the last look; the credits' rows are
compared with ours 200 at a time, so a look after a large run holds a chunk, not every credit
it made.

A duplicate is recorded as a failed "duplicate" event staff can find by either credit ID. Where
the connection names a "status for duplicate credits", the extra credit is moved there with a
note, so finance does not refund it; the credit bound to the return is never touched.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import islice

from django.utils import timezone

from brightpearl import ORDER_TYPE_SALES_CREDIT, BrightpearlError

from ..models import BindingState, Connection, RefundPayment, SalesCredit, SyncEvent
from . import chunks, exactly_once
from .context import SyncContext

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome
RECHECK_EVERY = timedelta(hours=1)
FIRST_LOOK_BACK = timedelta(days=30)
MARGIN = timedelta(minutes=5)


def check_duplicates(ctx: SyncContext) -> None:
    if ctx.dry_run:
        return
    connection = ctx.connection
    now = timezone.now()
    last = connection.duplicates_checked_at
    credits = SalesCredit.objects.filter(connection=connection, state=BindingState.CREATED)
    look_from = _look_from(credits, last, now)
    if look_from is None:
        return
    credits_written = last is None or credits.filter(updated_at__gte=look_from).exists()
    payments = RefundPayment.objects.filter(connection=connection, state=BindingState.CREATED)
    payments_written = payments.filter(updated_at__gte=look_from).exists()
    hourly = last is None or last < now - RECHECK_EVERY
    if not (credits_written or payments_written or hourly):
        return
    since = f"{look_from.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}/"
    _check_credits(ctx, since)
    if payments_written or (hourly and payments.exists()):
        _check_payments(ctx, since)
    Connection.objects.filter(pk=connection.pk).update(duplicates_checked_at=now)
    connection.duplicates_checked_at = now


def _look_from(credits, last: datetime | None, now: datetime) -> datetime | None:
    """Credits created since the last look (less a write lease and a margin: a late write can
    land that long after it was sent); on the first look, since our first credit."""
    if last is not None:
        return last - exactly_once.write_lease() - MARGIN
    first = credits.order_by("created_at").values_list("created_at", flat=True).first()
    if first is None:
        return None
    return max(first - MARGIN, now - FIRST_LOOK_BACK)


def _check_credits(ctx: SyncContext, since: str) -> None:
    """The credits created since `since`, `chunks.STEP_BATCH` search rows at a time (the
    search pages as before): each chunk's rows are held only with the bindings of their
    parent orders, so a look after a large run holds a chunk, not every credit it made."""
    rows = ctx.client.search_orders(orderTypeId=ORDER_TYPE_SALES_CREDIT, createdOn=since)
    previous = 0
    while chunk := list(islice(rows, chunks.STEP_BATCH)):
        chunks.release_garbage(previous)  # the previous chunk's bindings (one chunk: none)
        _check_credit_rows(ctx, chunk)
        previous = len(chunk)


def _check_credit_rows(ctx: SyncContext, rows: list[dict]) -> None:
    """Report the credits among `rows` that duplicate one of ours: same parent order, same
    return (external reference or customer reference), and not bound to a return."""
    account_key = ctx.connection.brightpearl_account_key
    by_parent: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_parent[int(row.get("parentOrderId") or 0)].append(row)
    bindings = (
        SalesCredit.objects.filter(
            account_key=account_key,
            parent_order_id__in=[p for p in by_parent if p],
            state=BindingState.CREATED,
        )
        .select_related("rma")
        .order_by("pk")
    )
    bound = set(
        SalesCredit.objects.filter(
            account_key=account_key, credit_id__in=[int(r["orderId"]) for r in rows]
        ).values_list("credit_id", flat=True)
    )
    for binding in bindings:
        for row in by_parent.get(binding.parent_order_id, []):
            credit_id = int(row["orderId"])
            if credit_id == binding.credit_id or credit_id in bound:
                continue
            if not _same_return(binding, row):
                continue
            status_id = ctx.connection.duplicate_credit_status_id
            if status_id and row.get("orderStatusId") == status_id:
                continue  # already moved aside
            _report_credit(ctx, binding, row)


def _same_return(binding: SalesCredit, row: dict) -> bool:
    if row.get("externalRef") and row.get("externalRef") == binding.external_ref:
        return True
    ref = str(row.get("customerRef") or "").strip()
    return bool(binding.customer_ref) and ref == binding.customer_ref


def _already_reported(connection: Connection, credit_id: int) -> bool:
    return SyncEvent.objects.filter(
        connection=connection, kind=Kind.DUPLICATE, credit_id=credit_id
    ).exists()


def _report_credit(ctx: SyncContext, binding: SalesCredit, row: dict) -> None:
    connection, extra = ctx.connection, int(row["orderId"])
    if _already_reported(connection, extra):
        return
    what = (
        f"Two live sales credits for RMA {binding.rma.rma_number or binding.rma.external_id} on "
        f"order {binding.parent_order_id}: {binding.credit_id} (made by the connector) and "
        f"{extra} (same {'external reference' if row.get('externalRef') else 'reference'})."
    )
    status_id = connection.duplicate_credit_status_id
    if not status_id:
        ctx.record(
            Kind.DUPLICATE,
            Outcome.FAILED,
            f"{what} Do not refund {extra}; cancel it in Brightpearl (or set the connection's "
            "status for duplicate credits to have the connector move it aside).",
            rma=binding.rma,
            credit_id=extra,
        )
        return
    note = (
        f"Duplicate of sales credit {binding.credit_id} for the same return "
        f"(RMA {binding.rma.rma_number or binding.rma.external_id}); moved aside by the "
        "returns connector. Do not refund this credit."
    )
    try:
        ctx.client.update_order_status(extra, status_id, note)
    except BrightpearlError as exc:
        ctx.record(
            Kind.DUPLICATE,
            Outcome.FAILED,
            f"{what} Could not move {extra} to status {status_id}: {exc}. Cancel it in "
            "Brightpearl; do not refund it.",
            rma=binding.rma,
            credit_id=extra,
            error=exc,
        )
        return
    ctx.record(
        Kind.DUPLICATE,
        Outcome.FAILED,
        f"{what} Moved {extra} to status {status_id} with a note; {binding.credit_id} stays.",
        rma=binding.rma,
        credit_id=extra,
    )


def _check_payments(ctx: SyncContext, since: str) -> None:
    connection = ctx.connection
    prefix = f"rbc-{connection.pk}-"
    # Only the payment IDs per reference are kept, not the rows: a look after many refunds
    # holds a few integers per payment.
    by_ref: dict[str, list[int]] = defaultdict(list)
    for row in ctx.client.search_customer_payments(createdOn=since):
        ref = str(row.get("transactionRef") or "")
        if ref.startswith(prefix) and row.get("paymentType") == "PAYMENT":
            by_ref[ref].append(int(row["paymentId"]))
    twice = {ref: ids for ref, ids in by_ref.items() if len(ids) > 1}
    if not twice:
        return
    for payment in RefundPayment.objects.filter(
        connection=connection, transaction_ref__in=list(twice)
    ).select_related("refund__rma", "sales_credit"):
        ids = sorted(twice[payment.transaction_ref])
        extra = [i for i in ids if i != payment.payment_id]
        credit_id = payment.sales_credit.credit_id
        if SyncEvent.objects.filter(
            connection=connection,
            kind=Kind.DUPLICATE,
            credit_id=credit_id,
            message__contains=f"payment {extra[0]}",
        ).exists():
            continue
        ctx.record(
            Kind.DUPLICATE,
            Outcome.FAILED,
            f"Refund {payment.refund.external_id} was recorded {len(ids)} times on credit "
            f"{credit_id}: payment {', '.join(str(i) for i in extra)} besides "
            f"{payment.payment_id}. Delete the extra payment in Brightpearl.",
            rma=payment.refund.rma,
            credit_id=credit_id,
        )
