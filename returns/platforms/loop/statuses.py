"""Loop's return states → the neutral lifecycle (keys lower-cased)."""

from ...lifecycle import APPROVED, CANCELLED, CLOSED, FLAGGED

STATUSES = {
    "open": APPROVED,  # submitted and accepted, outcomes pending
    "review": FLAGGED,
    "needs review": FLAGGED,  # spelling used by Loop's webhook docs
    "needs_review": FLAGGED,
    "closed": CLOSED,  # processed or closed on Loop's side
    "cancelled": CANCELLED,
    "canceled": CANCELLED,
    "expired": CANCELLED,  # label never used; nothing will arrive
}
