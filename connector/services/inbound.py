"""The one pipeline for inbound events (Brightpearl, Loop, ReturnGO webhooks).

`process(event_id)` claims the stored event, dispatches it by source to its handler, and moves
it along its lifecycle (see `connector.models.webhooks`): finished, retried later with the one
backoff policy, or failed with the reason. It never imports tasks: it returns when the event is
due again, and the caller (the Celery task) queues it. Housekeeping (`due_again`) and staff
replays (`reprocess`) return IDs for the caller to queue the same way.

A handler takes the event and returns an `Outcome`, or raises `RetryLater` (transient: the
sender, the platform or Brightpearl may answer next time) or `GiveUp` (permanent: a 4xx, bad
credentials). `brightpearl.BudgetSpent` (the account's request budget is spent for longer than a
task may wait in its slot, issue #12; raised before anything is sent) is neither: the event is
due again when the throttle says the budget is back, and the attempt is not counted. A
database error (SQLite's "database is locked", a dropped connection) counts as transient;
anything else is a bug, recorded on the event as a failure.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from brightpearl import BudgetSpent
from returns.platforms import registry

from ..models import WebhookEvent
from ..models.webhooks import max_attempts, processing_lease
from . import brightpearl_events, platform_events
from .brightpearl import interactive_lane
from .event_outcomes import GiveUp, Outcome, RetryLater
from .leases import Heartbeat

__all__ = ["GiveUp", "Outcome", "RetryLater", "Step", "due_events", "process"]

logger = logging.getLogger("connector.webhooks")
# Spread the events of one throttled account that come back together.
BUDGET_JITTER_SECONDS = 1.0


@dataclass
class Step:
    """What one `process` call did: the event's status afterwards, and when it is due again
    (None: nothing to queue)."""

    status: str
    retry_at: datetime | None = None


def handler_for(source: str) -> Callable[[WebhookEvent], Outcome] | None:
    """Brightpearl's events have their handler; every returns platform shares one (it
    re-fetches the return through the platform's adapter). None for a source we do not know."""
    if source == WebhookEvent.Source.BRIGHTPEARL:
        return brightpearl_events.handle
    if source in {spec.kind for spec in registry.webhook_platforms()}:
        return platform_events.handle
    return None


def process(event_id: int, owner: str = "") -> Step:
    """Process one stored event if it can be claimed; returns its status and when it is due.
    `owner`: who claims it (the Celery task ID; see `WebhookEvent.claim`)."""
    event = WebhookEvent.objects.select_related("connection").filter(pk=event_id).first()
    if event is None:
        return Step("")
    if not event.claim(owner):
        return Step(event.status)
    handler = handler_for(event.source)
    try:
        if handler is None:
            raise GiveUp(f"No handler for events from {event.source!r}.")
        # The claim's lease is short and renewed while the handler runs: a lost host's event
        # is dispatched again within a lease and a housekeeping tick. Someone waits for the
        # event: it spends from the interactive lane, not behind a large sync (issue #11).
        heartbeat = Heartbeat(
            event.renew_claim, processing_lease().total_seconds() / 3, "event-claim"
        )
        with heartbeat, interactive_lane():
            outcome = handler(event)
    except RetryLater as exc:
        due = _retry(event, str(exc), exc.retry_after)
        return Step(event.status, due)
    except BudgetSpent as exc:
        # Nothing failed: the slot is given back and the event comes back with the budget.
        delay = exc.retry_after + random.uniform(0, BUDGET_JITTER_SECONDS)
        return Step(event.status, event.pause_for_budget(f"the account's {exc}", delay))
    except SoftTimeLimitExceeded:
        due = _retry(event, "Processing ran past the task's time limit.")
        return Step(event.status, due)
    except GiveUp as exc:
        event.fail(str(exc))
    except DatabaseError as exc:
        # e.g. SQLite "database is locked": the work may not have been saved; try again later.
        logger.warning("inbound event %s: database error: %s", event.pk, exc)
        if not connection.in_atomic_block:
            close_old_connections()  # a broken connection is replaced before we record
        try:
            due = _retry(event, f"Database error: {exc}")
            return Step(event.status, due)
        except DatabaseError:
            # Not even the retry could be recorded: the claim lapses and housekeeping
            # dispatches the event again (see WebhookEvent.due_again).
            return Step(WebhookEvent.Status.PROCESSING)
    except Exception as exc:  # a bug: recorded on the event, with the traceback in the log
        logger.exception("inbound event %s failed", event.pk)
        event.fail(f"{exc.__class__.__name__}: {exc}")
    else:
        event.finish(outcome.status, outcome.message)
    log = logger.warning if event.status == WebhookEvent.Status.FAILED else logger.info
    log(
        "inbound event %s (%s %s): %s %s",
        event.pk,
        event.source,
        event.event,
        event.status,
        event.error,
    )
    return Step(event.status)


def due_events(connection_id: int, limit: int) -> list[int]:
    """The connection's events waiting to be processed now, oldest first (what one drain
    works through: `connector.tasks.drain_inbound_events`). Events waiting for a retry or for
    the budget are left to the task queued for their time, or to housekeeping."""
    waiting = WebhookEvent.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()),
        connection_id=connection_id,
        status=WebhookEvent.Status.RECEIVED,
    )
    return list(waiting.order_by("pk").values_list("pk", flat=True)[:limit])


def _retry(event: WebhookEvent, reason: str, retry_after: float | None = None):
    due = event.retry_later(reason, retry_after)
    if due is None:
        logger.warning("inbound event %s gave up: %s", event.pk, event.error)
    return due


def due_again(limit: int = 500) -> list[int]:
    """Housekeeping: events whose processing did not finish and that nobody is working on.
    Those with attempts left are returned to be queued; the others end `failed` with the
    reason (never `received` forever)."""
    ids = []
    for event in WebhookEvent.objects.due_again().order_by("next_attempt_at")[:limit]:
        if event.attempts >= max_attempts():
            reason = event.error or "processing never finished (lost task or worker)"
            event.fail(f"Gave up after {event.attempts} attempts: {reason}")
            continue
        ids.append(event.pk)
    return ids


def reprocess(event_ids: Iterable[int]) -> list[int]:
    """Staff replay (the admin action): the same path as any other dispatch."""
    return WebhookEvent.objects.filter(pk__in=list(event_ids)).reprocess()
