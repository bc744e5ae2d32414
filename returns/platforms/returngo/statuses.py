"""ReturnGO's RMA statuses → the neutral lifecycle (keys lower-cased)."""

from ...lifecycle import APPROVED, CANCELLED, CLOSED, REJECTED, REQUESTED

STATUSES = {
    "pending": REQUESTED,
    "approved": APPROVED,
    # Platform-side receipt/inspection: informative only (kept as platform_status); the
    # connector's own received state comes from Brightpearl goods-in.
    "received": APPROVED,
    "validated": APPROVED,
    "done": CLOSED,
    "rejected": REJECTED,
    "canceled": CANCELLED,
    "cancelled": CANCELLED,
}
