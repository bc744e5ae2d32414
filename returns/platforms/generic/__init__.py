"""The generic JSON intake API: a platform that pushes to us (connector/intake_api), so it has
no adapter, nothing to poll and no webhooks — only its status vocabulary."""

from ...lifecycle import APPROVED, CANCELLED, CLOSED, FLAGGED, REJECTED, REQUESTED
from ..registry import PlatformSpec

PLATFORM = PlatformSpec(
    kind="generic",
    label="Generic JSON intake API",
    statuses={
        "requested": REQUESTED,
        "pending": REQUESTED,
        "approved": APPROVED,
        "open": APPROVED,
        "flagged": FLAGGED,
        "review": FLAGGED,
        "rejected": REJECTED,
        "declined": REJECTED,
        "cancelled": CANCELLED,
        "canceled": CANCELLED,
        "closed": CLOSED,
    },
)
