"""What an inbound-event handler answers (`services/inbound.py` maps it onto the event's
lifecycle): an `Outcome`, or `RetryLater` (transient) / `GiveUp` (permanent) raised. A module
of its own so the handlers and the pipeline that calls them do not import each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outcome:
    status: str  # WebhookEvent.Status.PROCESSED or IGNORED
    message: str = ""


class RetryLater(Exception):
    """Transient: try this event again after the backoff (or the given Retry-After)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class GiveUp(Exception):
    """Permanent: retrying will not help; the event ends `failed` with this reason."""
