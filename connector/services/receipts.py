"""Receipts: what Brightpearl received against our credits, per RMA line, and what the platform
is told about it (process when everything expected is in; flag with the reason otherwise).

One code path for polling and webhooks: both call `update_receipts` with the credits concerned.
Goods-in movements carry the credit row ID in `purchaseOrderRowId` [Brightpearl docs]; a
movement into the warehouse's quarantine location is received but not restocked.

Polling reads the credits still waiting 200 at a time (`chunks.each_chunk`): one goods-in note
read per chunk as before, and each chunk let go before the next, so a run's memory follows the
chunk, not the credits still open. Quarantine releases follow, for every credit holding units
there, also a chunk at a time, with one goods-movement search per product and warehouse.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from brightpearl import MAX_IDS_PER_CALL, BrightpearlError
from returns import lifecycle
from returns.intake import advance
from returns.models import Rma, RmaLine
from returns.platforms.base import ReceiptLine
from returns.platforms.errors import PlatformError

from ..models import BindingState, SalesCredit, SyncEvent
from . import chunks, reference
from .chunks import each_chunk
from .context import SyncContext
from .credit_rows import capture_credit_rows

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome
OPEN_STATUSES = (
    lifecycle.CREDITED,
    lifecycle.PARTIALLY_RECEIVED,
    lifecycle.RECEIVED,
    lifecycle.CLOSED,
    lifecycle.FLAGGED,
)


@dataclass
class Tally:
    """What the goods-in notes of one credit add up to."""

    received: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # line → units
    restocked: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    unexpected: list[str] = field(default_factory=list)
    notes: int = 0


def tally_receipts(
    binding_row_map: dict[str, list[int]],
    notes: Iterable[dict],
    quarantine_locations: set[int],
) -> Tally:
    """Pure: map goods-in movements to RMA lines through the credit row IDs."""
    row_to_line = {int(r): int(line) for line, rows in binding_row_map.items() for r in rows}
    tally = Tally()
    for note in notes:
        if str(note.get("goodsNoteStatus", "")).upper() == "CANCELLED":
            continue
        tally.notes += 1
        for move in note.get("goodsMoved") or []:
            quantity = int(Decimal(str(move.get("quantity") or 0)))
            row_id = move.get("purchaseOrderRowId")
            line_id = row_to_line.get(int(row_id)) if row_id else None
            if line_id is None:
                tally.unexpected.append(
                    f"{quantity} × product {move.get('productId')} (row {row_id}) that is not "
                    "on the return"
                )
                continue
            tally.received[line_id] += quantity
            if int(move.get("destinationLocationId") or 0) not in quarantine_locations:
                tally.restocked[line_id] += quantity
    return tally


def receipt_candidates(connection) -> QuerySet[SalesCredit]:
    """Our credits still waiting for receipts (read a chunk at a time: `chunks.each_chunk`)."""
    return (
        SalesCredit.objects.filter(
            connection=connection,
            state=BindingState.CREATED,
            processed_at__isnull=True,
            credit_id__isnull=False,
        )
        .filter(rma__status__in=OPEN_STATUSES)
        .select_related("rma")
    )


def update_receipts(ctx: SyncContext, bindings: list[SalesCredit] | None = None) -> None:
    """The sync step (every credit still waiting, `chunks.STEP_BATCH` at a time) or a
    webhook's few credits (`bindings`); then the quarantine releases of the credits holding
    units there."""
    if bindings is not None:
        holding: list[SalesCredit] = []
        for start in range(0, len(bindings), chunks.STEP_BATCH):
            done = _receipts_for(ctx, bindings[start : start + chunks.STEP_BATCH])
            holding += [b for b in done if _holds_quarantine(b)]
        _releases_or_record(ctx, lambda: apply_quarantine_releases(ctx, holding))
        return
    each_chunk(receipt_candidates(ctx.connection), lambda chunk: _receipts_for(ctx, chunk))
    # After the receipts: a credit that received into quarantine just now holds units there.
    _releases_or_record(ctx, lambda: release_quarantine_holders(ctx))


def _receipts_for(ctx: SyncContext, bindings: list[SalesCredit]) -> list[SalesCredit]:
    """Read and apply the receipts of up to 200 credits (one goods-in note read, and one Order
    GET when a "received" status is configured); the credits whose rows are known."""
    bindings = [b for b in bindings if b.credit_id]
    # A credit made by a run that died before reading its rows back has none yet: read them
    # now; one still without them is left for the next run rather than flagged wrongly.
    unmapped = [b for b in bindings if not b.row_map]
    if unmapped:
        mapped = {b.pk for b in capture_credit_rows(ctx, unmapped)}
        bindings = [b for b in bindings if b.row_map or b.pk in mapped]
    _read_receipts(ctx, bindings)
    return bindings


def _releases_or_record(ctx: SyncContext, releases: Callable[[], None]) -> None:
    # Releases from quarantine turn received units into restocked ones, also after processing.
    try:
        releases()
    except BrightpearlError as exc:
        ctx.record(
            Kind.RECEIPT, Outcome.FAILED, f"Could not read quarantine releases: {exc}", error=exc
        )


def _read_receipts(ctx: SyncContext, bindings: list[SalesCredit]) -> None:
    for start in range(0, len(bindings), MAX_IDS_PER_CALL):
        group = bindings[start : start + MAX_IDS_PER_CALL]
        credit_ids = [b.credit_id for b in group]
        try:
            notes = ctx.client.get_goods_in_notes(order_ids=credit_ids)
            statuses = _credit_statuses(ctx, credit_ids)
        except BrightpearlError as exc:
            ctx.record(
                Kind.RECEIPT, Outcome.FAILED, f"Could not read goods-in notes: {exc}", error=exc
            )
            continue
        by_credit: dict[int, list[dict]] = defaultdict(list)
        for note in notes.values():
            by_credit[int(note.get("orderId") or 0)].append(note)
        for binding in group:
            try:
                apply_receipt(
                    ctx,
                    binding,
                    by_credit.get(binding.credit_id, []),
                    statuses.get(binding.credit_id),
                )
            except BrightpearlError as exc:
                ctx.record(
                    Kind.RECEIPT,
                    Outcome.FAILED,
                    f"Brightpearl error: {exc}",
                    rma=binding.rma,
                    error=exc,
                )


def _credit_statuses(ctx: SyncContext, credit_ids: list[int]) -> dict[int, int]:
    """Credit ID → order status ID, only when a 'received' status is configured."""
    if not ctx.connection.received_status_id:
        return {}
    return {
        int(order["id"]): int((order.get("orderStatus") or {}).get("orderStatusId") or 0)
        for order in ctx.client.get_orders(credit_ids)
    }


def _quarantine_locations(ctx: SyncContext, warehouse_id: int | None) -> set[int]:
    cache: dict[int, set[int]] = ctx.cache.setdefault("quarantine", {})
    if not warehouse_id:
        return set()
    if warehouse_id not in cache:

        def load() -> list[int]:
            location = ctx.client.get_quarantine_location(warehouse_id)
            return [int(location["id"])] if location and location.get("id") else []

        cache[warehouse_id] = set(
            reference.cached(ctx.connection, "quarantine-location", warehouse_id, load)
        )
    return cache[warehouse_id]


def apply_receipt(
    ctx: SyncContext, binding: SalesCredit, notes: list[dict], status_id: int | None
) -> None:
    rma = binding.rma
    lines = {line.pk: line for line in rma.lines.all()}
    quarantine = _quarantine_locations(ctx, binding.warehouse_id)
    tally = tally_receipts(binding.row_map or {}, notes, quarantine)

    _record_line_quantities(ctx, binding, lines, tally)

    # Keep-item (returnless) lines are credited but no goods are expected for them.
    expected = sum(line.quantity for line in lines.values() if not line.keep_item)
    kept = sum(line.quantity for line in lines.values() if line.keep_item)
    got = sum(tally.received.get(pk, 0) for pk in lines)
    marked_received = bool(status_id and status_id == ctx.connection.received_status_id)
    problems = receipt_problems(lines, tally, marked_received)
    if problems:
        flag_rma(ctx, rma, "; ".join(problems) + ".", binding=binding)
        return
    if (expected or kept) and got >= expected:
        if ctx.dry_run:
            return
        with transaction.atomic():
            advance(Rma.objects.select_for_update().get(pk=rma.pk), lifecycle.RECEIVED)
        if rma.flagged:
            # Everything arrived, but a human is looking at this return: leave processing to
            # them (they clear the flag with "retry selected items", then it is processed).
            return
        process_rma(ctx, binding, kept_only=not expected)
    elif got:
        if not ctx.dry_run:
            advance(rma, lifecycle.PARTIALLY_RECEIVED)
    elif rma.status == lifecycle.CLOSED and not binding.received_via_goods_in:
        receive_processed_elsewhere(ctx, binding)


def _record_line_quantities(
    ctx: SyncContext, binding: SalesCredit, lines: dict, tally: Tally
) -> None:
    """Received and restocked units per RMA line (quarantine releases count as restocked)."""
    changed = []
    for line_id, line in lines.items():
        released = int((binding.released_units or {}).get(str(line_id), 0))
        received = tally.received.get(line_id, 0)
        restocked = min(received, tally.restocked.get(line_id, 0) + released)
        if (line.quantity_received, line.quantity_restocked) != (received, restocked):
            changed.append(
                f"{line.sku}: {received}/{line.quantity} received, {restocked} restocked"
            )
            line.quantity_received, line.quantity_restocked = received, restocked
            if not ctx.dry_run:
                line.save(update_fields=["quantity_received", "quantity_restocked"])
    if changed:
        ctx.record(
            Kind.RECEIPT,
            Outcome.SUCCEEDED,
            "; ".join(changed),
            rma=binding.rma,
            credit_id=binding.credit_id,
        )


def receipt_problems(lines: dict, tally: Tally, marked_received: bool) -> list[str]:
    """Why the return must be flagged: an unknown item, a surplus, or a shortfall once the
    credit has the connection's "received" status. Empty when nothing is off."""
    surplus = [
        f"{tally.received[pk] - line.quantity} more × {line.sku} than returned"
        for pk, line in lines.items()
        if tally.received.get(pk, 0) > line.quantity
    ]
    problems = [f"Brightpearl received {u}" for u in tally.unexpected] + [
        f"Brightpearl received {s}" for s in surplus
    ]
    short = [
        f"{line.quantity - tally.received.get(pk, 0)} × {line.sku}"
        for pk, line in lines.items()
        if not line.keep_item and tally.received.get(pk, 0) < line.quantity
    ]
    if marked_received and short:
        problems.append(f"Credit marked received but missing {', '.join(short)}")
    return problems


def receipt_lines(rma: Rma) -> list[ReceiptLine]:
    return [
        ReceiptLine(
            sku=line.sku,
            platform_line_ids=list(line.platform_line_ids or []),
            quantity_expected=line.quantity,
            quantity_received=line.quantity_received,
            quantity_restocked=line.quantity_restocked,
        )
        for line in RmaLine.objects.filter(rma=rma)
    ]


def process_rma(ctx: SyncContext, binding: SalesCredit, *, kept_only: bool = False) -> None:
    """Everything expected is in (``kept_only``: nothing was expected — the customer keeps
    every item): tell the platform to process the return (once).

    A poll and a webhook (or two webhooks) may get here for the same credit at the same time:
    `processed_at` is claimed by a conditional UPDATE before the platform is called, so only
    one execution calls it. A platform refusal gives the claim back (a later run retries); a
    crash between the claim and the call leaves the RMA `received` with `processed_at` set,
    for staff to check — a return processed twice on the platform would be worse.
    """
    rma = Rma.objects.get(pk=binding.rma_id)
    if binding.processed_at or not ctx.connection.update_platform:
        return
    claimed_at = timezone.now()
    if not SalesCredit.objects.filter(pk=binding.pk, processed_at__isnull=True).update(
        processed_at=claimed_at
    ):
        return  # another execution processed it (or is doing so)
    binding.processed_at = claimed_at
    platform = ctx.platform
    if platform is not None:
        try:
            platform.mark_received(rma, receipt_lines(rma))
            platform.process(rma)
        except PlatformError as exc:  # the platform's answer (refused, down): retry later
            SalesCredit.objects.filter(pk=binding.pk, processed_at=claimed_at).update(
                processed_at=None
            )
            binding.processed_at = None
            ctx.record(
                Kind.PROCESS,
                Outcome.FAILED,
                f"The platform refused to process: {exc}",
                rma=rma,
                credit_id=binding.credit_id,
            )
            return
    advance(rma, lifecycle.PROCESSED)
    done = (
        "No goods to wait for: the customer keeps every item (credited without a receipt)"
        if kept_only
        else "Everything expected arrived"
    )
    ctx.record(
        Kind.PROCESS,
        Outcome.SUCCEEDED,
        f"{done}; return processed on the platform." if platform is not None else f"{done}.",
        rma=rma,
        credit_id=binding.credit_id,
    )


def flag_rma(
    ctx: SyncContext, rma: Rma, reason: str, *, binding: SalesCredit | None = None
) -> None:
    """Flag with the reason, locally and on the platform, but never the same reason twice."""
    binding = binding or SalesCredit.objects.filter(rma=rma).first()
    already_sent = binding is not None and binding.platform_flag_reason == reason
    if rma.flag_reason == reason and rma.flagged and already_sent:
        return
    if ctx.dry_run:
        ctx.record(Kind.FLAG, Outcome.SKIPPED, f"would flag on the platform: {reason}", rma=rma)
        return
    Rma.objects.filter(pk=rma.pk).update(flagged=True, flag_reason=reason)
    rma.flagged, rma.flag_reason = True, reason
    advance(rma, lifecycle.FLAGGED)
    platform = ctx.platform if ctx.connection.update_platform else None
    if platform is not None and not already_sent:
        # Claim the reason first (conditional UPDATE), so concurrent executions flag once.
        if binding is not None and not (
            SalesCredit.objects.filter(pk=binding.pk)
            .exclude(platform_flag_reason=reason)
            .update(platform_flag_reason=reason)
        ):
            return  # another execution sent this reason
        try:
            platform.flag(rma, reason)
        except PlatformError as exc:
            if binding is not None:
                SalesCredit.objects.filter(pk=binding.pk, platform_flag_reason=reason).update(
                    platform_flag_reason=""
                )
            ctx.record(
                Kind.FLAG,
                Outcome.FAILED,
                f"Could not flag on the platform: {exc}. Reason: {reason}",
                rma=rma,
            )
            return
    ctx.record(
        Kind.FLAG,
        Outcome.FLAGGED,
        reason,
        rma=rma,
        credit_id=binding.credit_id if binding else None,
    )


def receive_processed_elsewhere(ctx: SyncContext, binding: SalesCredit) -> None:
    """The return was processed on the platform before Brightpearl received anything: receive
    the credit's items so stock and the platform agree (like Loop's integration)."""
    if not ctx.connection.create_goods_in_when_processed_elsewhere or ctx.dry_run:
        return
    credit = ctx.client.get_sales_credits([binding.credit_id])
    if not credit:
        return
    credit = credit[0]
    kept_lines = {
        str(pk) for pk in binding.rma.lines.filter(keep_item=True).values_list("pk", flat=True)
    }
    kept_rows = {
        int(r) for line, rows in (binding.row_map or {}).items() if line in kept_lines for r in rows
    }
    warehouse_id = binding.warehouse_id or credit.get("warehouseId")
    location = _default_location(ctx, warehouse_id)
    moves = [
        {
            "productId": row["productId"],
            "purchaseOrderRowId": row["id"],
            "quantity": int(Decimal(str(row["quantity"]))),
            "destinationLocationId": location,
            "productValue": {
                "currency": (credit.get("currency") or {}).get("code") or binding.currency,
                "value": str(Decimal(str(row["net"])) / Decimal(str(row["quantity"])))
                if Decimal(str(row["quantity"]))
                else "0",
            },
        }
        for row in credit.get("rows") or []
        if row.get("productId") and int(row["id"]) not in kept_rows
    ]
    if not moves:
        return
    note_id = ctx.client.create_goods_in_note(
        binding.credit_id,
        {
            "transfer": False,
            "warehouseId": warehouse_id,
            "receivedOn": timezone.now().isoformat(),
            # Unique across all goods-in notes in Brightpearl: a retry cannot receive twice.
            "userBatchReference": binding.external_ref,
            "goodsMoved": moves,
        },
    )
    SalesCredit.objects.filter(pk=binding.pk).update(
        received_via_goods_in=True, processed_at=timezone.now()
    )
    ctx.record(
        Kind.GOODS_IN,
        Outcome.SUCCEEDED,
        f"Return was processed on the platform first; received it in Brightpearl "
        f"(goods-in note {note_id}).",
        rma=binding.rma,
        credit_id=binding.credit_id,
    )


def _default_location(ctx: SyncContext, warehouse_id: int) -> int | None:
    quarantine = _quarantine_locations(ctx, warehouse_id)
    locations = reference.cached(
        ctx.connection,
        "warehouse-locations",
        warehouse_id,
        lambda: [int(loc["id"]) for loc in ctx.client.get_warehouse_locations(warehouse_id)],
    )
    for location_id in locations:
        if location_id not in quarantine:
            return location_id
    return None


# --- quarantine releases ---------------------------------------------------------------------
def _holds_quarantine(binding: SalesCredit) -> bool:
    return any(line.quantity_received > line.quantity_restocked for line in binding.rma.lines.all())


def _holders(connection) -> QuerySet[SalesCredit]:
    # Starts from the few lines still holding units in quarantine (a partial index), so a
    # quiet poll's cost does not grow with every credit that ever received something.
    holding = RmaLine.objects.filter(
        quantity_received__gt=F("quantity_restocked"), rma__connection=connection
    ).values("rma_id")
    return SalesCredit.objects.filter(
        connection=connection,
        state=BindingState.CREATED,
        credit_id__isnull=False,
        rma_id__in=holding,
    )


def quarantine_holders(connection) -> list[SalesCredit]:
    """Credits (processed or not) with returned units still in a quarantine location."""
    return list(_holders(connection).select_related("rma").prefetch_related("rma__lines"))


def release_quarantine_holders(ctx: SyncContext) -> None:
    """`apply_quarantine_releases` for every credit holding quarantined units, a chunk at a
    time: a first pass reads only what to search for (warehouse, products), so each product
    and warehouse is still searched once per run however many chunks hold it."""
    holders = _holders(ctx.connection)
    keys: set[tuple[int, int]] = set()
    found = each_chunk(
        holders.only("pk", "warehouse_id", "planned_rows"),
        lambda chunk: keys.update(_quarantine_keys(chunk)),
    )
    if not found:
        return
    taken = _released_units(ctx, keys)
    each_chunk(
        holders.select_related("rma").prefetch_related("rma__lines"),
        lambda chunk: _apply_releases(ctx, [b for b in chunk if _holds_quarantine(b)], taken),
    )


def release_fifo(movements: Iterable[dict]) -> dict[tuple[int, int], int]:
    """Pure: which quarantined receipts the releases took, first in first out.

    `movements` are goods movements of one product in one warehouse's quarantine: units in
    (positive, with the order and row they were received against) and out (negative: released).
    A release names no order (Brightpearl), so it is attributed to the oldest units still held —
    the way stock is released in practice. Returns (order ID, row ID) → units released."""
    ordered = sorted(
        movements, key=lambda m: (str(m.get("updatedOn") or ""), int(m.get("goodsMovementId") or 0))
    )
    held: list[list] = []  # [order_id, row_id, units left]
    taken: dict[tuple[int, int], int] = defaultdict(int)
    for move in ordered:
        quantity = int(Decimal(str(move.get("quantity") or 0)))
        if quantity > 0:
            held.append(
                [int(move.get("orderId") or 0), int(move.get("purchaseOrderRowId") or 0), quantity]
            )
            continue
        out = -quantity
        while out > 0 and held:
            order_id, row_id, left = held[0]
            take = min(left, out)
            if order_id and row_id:
                taken[(order_id, row_id)] += take
            out -= take
            held[0][2] -= take
            if held[0][2] == 0:
                held.pop(0)
    return dict(taken)


def apply_quarantine_releases(ctx: SyncContext, bindings: list[SalesCredit]) -> None:
    """Re-derive, for credits holding quarantined units, how many were released to sellable
    stock since; restocked = received into stock + released. One goods-movement search per
    product and warehouse concerned (its filters take one value each)."""
    if not bindings:
        return
    _apply_releases(ctx, bindings, _released_units(ctx, _quarantine_keys(bindings)))


def _quarantine_keys(bindings: list[SalesCredit]) -> set[tuple[int, int]]:
    """(warehouse ID, product ID) of every product these credits hold."""
    return {
        (int(binding.warehouse_id), int(row["productId"]))
        for binding in bindings
        for row in binding.planned_rows or []
        if row.get("productId") and binding.warehouse_id
    }


def _released_units(ctx: SyncContext, keys: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """(credit ID, credit row ID) → units released from quarantine, for these products."""
    taken: dict[tuple[int, int], int] = {}
    for warehouse_id, product_id in sorted(keys):
        moves = ctx.client.search_goods_movements(
            productId=product_id, warehouseId=warehouse_id, isQuarantine=True
        )
        taken.update(release_fifo(moves))
    return taken


def _apply_releases(
    ctx: SyncContext, bindings: list[SalesCredit], taken: dict[tuple[int, int], int]
) -> None:
    for binding in bindings:
        new = {
            line_id: sum(taken.get((binding.credit_id, int(r)), 0) for r in rows)
            for line_id, rows in (binding.row_map or {}).items()
        }
        old = {k: int(v) for k, v in (binding.released_units or {}).items()}
        if {k: v for k, v in new.items() if v} == {k: v for k, v in old.items() if v}:
            continue
        notes = []
        for line in binding.rma.lines.all():
            delta = new.get(str(line.pk), 0) - old.get(str(line.pk), 0)
            if not delta:
                continue
            line.quantity_restocked = max(
                0, min(line.quantity_received, line.quantity_restocked + delta)
            )
            notes.append(
                f"{line.sku}: {new.get(str(line.pk), 0)} released from quarantine, "
                f"{line.quantity_restocked}/{line.quantity_received} restocked"
            )
            if not ctx.dry_run:
                line.save(update_fields=["quantity_restocked"])
        if ctx.dry_run:
            continue
        SalesCredit.objects.filter(pk=binding.pk).update(released_units=new)
        binding.released_units = new
        ctx.record(
            Kind.RECEIPT,
            Outcome.SUCCEEDED,
            "; ".join(notes) or "Quarantine updated.",
            rma=binding.rma,
            credit_id=binding.credit_id,
        )
