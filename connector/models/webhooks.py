"""Every inbound event, stored raw before anything else is done with it — and its lifecycle.

The same table serves Brightpearl (unsigned, IDs only), Loop (HMAC-signed) and ReturnGO
(secret URL): store first, verify and parse, answer fast, process after commit by re-fetching
what the event names. The payload is only ever a hint.

A stored event owns its lifecycle (dj-stripe's WebhookEventTrigger style), so every caller —
the webhook view, the one processing task, the housekeeping beat task, the admin's
"reprocess" — moves it the same way:

    received ──claim()──▶ processing ──finish()──▶ processed | ignored
        ▲                     │
        └── retry_later() ────┤  (transient: back to received, due after a backoff)
                              └──fail()──▶ failed   (permanent, or attempts used up)

`claim()` is a conditional UPDATE, so two tasks (a redelivered task, a housekeeping re-dispatch)
never process one event at once. `processing` carries a short lease (`next_attempt_at`, renewed
by a heartbeat while the handler runs): a worker that died mid-event leaves it `processing` past
the lease, and housekeeping dispatches it again. A
`received` event past its due time was never picked up (a lost broker message, a locked
database) and is dispatched again too. Nothing stays `received` forever: after
`max_attempts()` claims it ends `failed` with the reason.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from returns.platforms import registry


def max_attempts() -> int:
    return int(getattr(settings, "INBOUND_EVENT_MAX_ATTEMPTS", 6))


def processing_lease() -> timedelta:
    """How long a claimed event may be processing without its worker renewing the claim
    (`renew_claim`, every third of it, while the handler runs) before it counts as abandoned:
    a lost worker's or host's event is dispatched again within it and a housekeeping tick."""
    return timedelta(seconds=int(getattr(settings, "INBOUND_EVENT_LEASE_SECONDS", 90)))


def stuck_after() -> timedelta:
    """How long a due `received` event may wait for its task before it is dispatched again."""
    return timedelta(seconds=int(getattr(settings, "INBOUND_EVENT_STUCK_AFTER_SECONDS", 60)))


BACKOFF_BASE_SECONDS = 30.0


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """The one backoff policy for inbound events: capped exponential with jitter (30 s, 1, 2,
    4 … min); a sender's or platform's Retry-After is honoured, capped the same way."""
    cap = float(getattr(settings, "CELERY_TASK_RETRY_BACKOFF_MAX", 30 * 60))
    if retry_after is not None:
        return min(max(float(retry_after), 1.0), cap)
    base = min(BACKOFF_BASE_SECONDS * (2 ** max(attempt - 1, 0)), cap)
    return base / 2 + random.uniform(0, base / 2)


class WebhookEventQuerySet(models.QuerySet):
    def due_again(self, now: datetime | None = None) -> WebhookEventQuerySet:
        """Events whose processing did not finish and that nobody is working on: `received`
        and overdue (the task was lost or failed to record), or `processing` past its lease."""
        now = now or timezone.now()
        return self.filter(
            Q(status=WebhookEvent.Status.RECEIVED, next_attempt_at__lte=now - stuck_after())
            | Q(status=WebhookEvent.Status.PROCESSING, next_attempt_at__lte=now)
        )

    def reprocess(self) -> list[int]:
        """Staff replay: back to `received` with a fresh attempt count, due now. Rejected
        events have nothing parsed to process and are left alone. Returns the IDs to queue."""
        ids = list(self.exclude(status=WebhookEvent.Status.REJECTED).values_list("pk", flat=True))
        self.model.objects.filter(pk__in=ids).update(
            status=WebhookEvent.Status.RECEIVED,
            error="",
            processed_at=None,
            attempts=0,
            next_attempt_at=timezone.now(),
        )
        return ids


BRIGHTPEARL_SOURCE = ("brightpearl", "Brightpearl")


def source_choices() -> list[tuple[str, str]]:
    """Brightpearl, then every returns platform whose webhooks we receive (the registry's)."""
    return [BRIGHTPEARL_SOURCE] + [(s.kind, s.label) for s in registry.webhook_platforms()]


class WebhookEvent(models.Model):
    # Constants for code (`Source.BRIGHTPEARL`, `Source.LOOP`); the field's choices are
    # `source_choices`, so a platform registered later is a valid source too.
    Source = models.TextChoices(
        "Source", [(kind.upper(), (kind, label)) for kind, label in source_choices()]
    )

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"
        REJECTED = "rejected", "Rejected (malformed)"
        DUPLICATE = "duplicate", "Duplicate"

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="webhook_events"
    )
    source = models.CharField(max_length=12, choices=source_choices, db_index=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    # Parsed hints (never trusted: processing re-fetches the resources).
    event = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="e.g. goods-in-note.created"
    )
    resource_type = models.CharField(max_length=50, blank=True)
    resource_ids = models.TextField(
        "resource IDs", blank=True, help_text="An ID set as sent, e.g. 1-5,99."
    )
    dedupe_key = models.CharField(max_length=200, blank=True)
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="redeliveries",
        help_text="The first delivery of the same event (which holds the dedupe key).",
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.RECEIVED, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        default=timezone.now,
        db_index=True,
        help_text="Received: when processing is due. Processing: when the claim lapses.",
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(
        max_length=100,
        blank=True,
        help_text="Who holds the processing claim (the Celery task ID, which a task redelivered "
        "after its worker died keeps, so it resumes at once).",
    )

    objects = WebhookEventQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["connection", "source", "dedupe_key"])]
        constraints = [
            # Duplicate detection is atomic: only one row per event holds its dedupe key; a
            # second delivery's UPDATE to the same key fails inside a savepoint.
            models.UniqueConstraint(
                fields=["connection", "source", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="webhook_event_unique_dedupe_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.event or '(unparsed)'} #{self.pk}"

    # --- lifecycle -----------------------------------------------------------------------------
    def claim(self, owner: str = "") -> bool:
        """Take the event for processing (one claimant at a time); counts an attempt. A claim
        whose lease lapsed, or one held by the same `owner` (a Celery task redelivered after
        its worker died keeps its ID), can be taken again."""
        now = timezone.now()
        claimable = Q(status=self.Status.RECEIVED) | Q(
            status=self.Status.PROCESSING, next_attempt_at__lte=now
        )
        if owner:
            claimable |= Q(status=self.Status.PROCESSING, claimed_by=owner)
        claimed = (
            WebhookEvent.objects.filter(pk=self.pk)
            .filter(claimable)
            .update(
                status=self.Status.PROCESSING,
                attempts=F("attempts") + 1,
                next_attempt_at=now + processing_lease(),
                claimed_by=owner[:100],
            )
        )
        self.refresh_from_db(
            fields=["status", "attempts", "next_attempt_at", "error", "claimed_by"]
        )
        return bool(claimed)

    def renew_claim(self) -> bool:
        """Push the claim's lease forward while we still hold it (the processing heartbeat)."""
        return bool(
            WebhookEvent.objects.filter(
                pk=self.pk, status=self.Status.PROCESSING, claimed_by=self.claimed_by
            ).update(next_attempt_at=timezone.now() + processing_lease())
        )

    def finish(self, status: str, message: str = "") -> None:
        """Processed or ignored (with the reason)."""
        self._end(status, "" if status == self.Status.PROCESSED else message)

    def fail(self, reason: str) -> None:
        self._end(self.Status.FAILED, reason)

    def retry_later(self, reason: str, retry_after: float | None = None) -> datetime | None:
        """A transient failure: due again after the backoff, or `failed` once the attempts are
        used up. Returns when it is due (None when it failed)."""
        if self.attempts >= max_attempts():
            self.fail(f"Gave up after {self.attempts} attempts: {reason}")
            return None
        delay = backoff_delay(self.attempts, retry_after)
        due = timezone.now() + timedelta(seconds=delay)
        self.status, self.next_attempt_at = self.Status.RECEIVED, due
        self.error = f"Attempt {self.attempts} failed, retrying in {delay:.0f}s: {reason}"[:2000]
        WebhookEvent.objects.filter(pk=self.pk).update(
            status=self.status, next_attempt_at=due, error=self.error
        )
        return due

    def pause_for_budget(self, reason: str, delay: float) -> datetime:
        """The Brightpearl account's request budget is spent (nothing was sent): due again in
        ``delay`` seconds, and this attempt is given back — waiting for budget is not a
        failure, however often it happens. Returns when it is due."""
        due = timezone.now() + timedelta(seconds=delay)
        self.status, self.next_attempt_at = self.Status.RECEIVED, due
        self.attempts = max(self.attempts - 1, 0)
        self.error = f"Paused, due again in {delay:.0f}s: {reason}"[:2000]
        WebhookEvent.objects.filter(pk=self.pk).update(
            status=self.status, next_attempt_at=due, error=self.error, attempts=self.attempts
        )
        return due

    def redelivered(self) -> bool:
        """The sender delivered this event again. An event that never finished (failed, or
        stuck without anyone working on it) is made due now; True when it should be queued."""
        now = timezone.now()
        if self.status == self.Status.FAILED:
            reset = {"attempts": 0}
            stuck = Q(status=self.Status.FAILED)
        else:
            reset = {}
            stuck = Q(status=self.Status.RECEIVED, next_attempt_at__lte=now - stuck_after()) | Q(
                status=self.Status.PROCESSING, next_attempt_at__lte=now
            )
        return bool(
            WebhookEvent.objects.filter(pk=self.pk)
            .filter(stuck)
            .update(status=self.Status.RECEIVED, next_attempt_at=now, **reset)
        )

    def _end(self, status: str, message: str) -> None:
        self.status, self.error = status, (message or "")[:2000]
        self.next_attempt_at = None
        self.processed_at = timezone.now()
        WebhookEvent.objects.filter(pk=self.pk).update(
            status=self.status,
            error=self.error,
            next_attempt_at=None,
            processed_at=self.processed_at,
        )
