"""Credit row IDs per RMA line: how a goods-in movement (`purchaseOrderRowId`) finds its line.

Read back (batched) right after credits are made, and again by the receipt step for any credit
still without them — a run killed between making a credit and reading it back, or a failed
read, must not leave receipts unmappable (they would be flagged "not on the return").
"""

from __future__ import annotations

from brightpearl import MAX_IDS_PER_CALL, BrightpearlError

from ..models import SalesCredit, SyncEvent
from .context import SyncContext
from .credit_plan import match_credit_rows

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome


def capture_credit_rows(ctx: SyncContext, bindings: list[SalesCredit]) -> list[SalesCredit]:
    """Read the credits back and store credit row IDs per RMA line. Returns the bindings that
    now have them (the others stay without, to be read again next run)."""
    by_id = {b.credit_id: b for b in bindings if b.credit_id}
    if not by_id:
        return []
    done: list[SalesCredit] = []
    ids = sorted(by_id)
    for start in range(0, len(ids), MAX_IDS_PER_CALL):
        try:
            credits = ctx.client.get_sales_credits(ids[start : start + MAX_IDS_PER_CALL])
        except BrightpearlError as exc:
            ctx.record(
                Kind.CREDIT,
                Outcome.FAILED,
                f"Could not read credit rows back: {exc}; the next run reads them again.",
                error=exc,
            )
            continue
        for credit in credits:
            binding = by_id.get(int(credit["id"]))
            if binding is None:
                continue
            binding.row_map = match_credit_rows(binding.planned_rows, credit)
            binding.warehouse_id = binding.warehouse_id or credit.get("warehouseId")
            binding.save(update_fields=["row_map", "warehouse_id", "updated_at"])
            done.append(binding)
    return done
