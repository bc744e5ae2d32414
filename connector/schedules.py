"""Scheduled syncs: one dispatcher for every connection, not one beat entry per connection.
The same tick recovers what a lost worker or host left behind (`recover`).

Beat runs `connector.tasks.dispatch_due_syncs` every DISPATCH_EVERY_SECONDS (one PeriodicTask,
made by a data migration). It queues a sync for each enabled connection whose `next_sync_at` has
passed and moves `next_sync_at` one interval on. A new connection's first `next_sync_at` is a
fixed phase within its interval (from its ID), and each queued sync gets a countdown spread over
the dispatch period, so 1,000 connections never mean 1,000 tasks in one second. The connection's
"sync every (minutes)" stays the interval; an idle connection costs one indexed query per tick.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Connection
from .services.leases import close_interrupted, stale_runs
from .services.pending import lapsed_leases, stale_pending, take_due_runs

DISPATCHER_NAME = "connector-dispatch-syncs"
DISPATCH_TASK = "connector.tasks.dispatch_due_syncs"
DISPATCH_EVERY_SECONDS = 60
# At most this many syncs per tick; the rest stay due and go on the next tick.
DISPATCH_BATCH = 500


def first_sync_at(connection_id: int, interval_minutes: int, now: datetime) -> datetime:
    """A stable phase within the interval, so connections are spread evenly over it."""
    period = max(1, interval_minutes) * 60
    phase = (connection_id * 7919) % period  # a prime stride spreads consecutive IDs
    return now + timedelta(seconds=phase)


def dispatch_due(
    now: datetime | None = None, *, enqueue: Callable[[int, float], None]
) -> list[int]:
    """Queue a sync for every due connection (at most DISPATCH_BATCH) through
    `enqueue(connection ID, countdown)`, after commit; returns their IDs. The caller (the
    beat task) owns the queueing, so this module never imports the tasks.

    The `next_sync_at` update is conditional on the value read, so two dispatchers (a second
    beat started by mistake) never queue the same connection twice for one slot."""
    now = now or timezone.now()
    # Connections never scheduled get their phase first (no sync now: spread from the start).
    for pk, minutes in Connection.objects.filter(
        enabled=True, next_sync_at__isnull=True
    ).values_list("pk", "sync_interval_minutes")[:DISPATCH_BATCH]:
        Connection.objects.filter(pk=pk, next_sync_at__isnull=True).update(
            next_sync_at=first_sync_at(pk, minutes, now)
        )
    due = list(
        Connection.objects.filter(enabled=True)
        .filter(Q(next_sync_at__lte=now))
        .order_by("next_sync_at")
        .values_list("pk", "sync_interval_minutes", "next_sync_at")[:DISPATCH_BATCH]
    )
    queued = []
    for pk, minutes, when in due:
        step = timedelta(minutes=max(1, minutes))
        following = when + step
        if following <= now:  # long outage: do not catch up one interval at a time
            following = now + step
        if Connection.objects.filter(pk=pk, next_sync_at=when).update(next_sync_at=following):
            queued.append(pk)
            countdown = random.uniform(0, DISPATCH_EVERY_SECONDS)
            transaction.on_commit(lambda pk=pk, c=countdown: enqueue(pk, c))
    return queued


def reschedule(connection) -> None:
    """The interval changed, or the connection was (re-)enabled: take a new phase."""
    Connection.objects.filter(pk=connection.pk).update(next_sync_at=None)


def recover(
    *, enqueue_pending: Callable[[int], None], enqueue_run: Callable[[int], None]
) -> dict[str, int]:
    """What a lost worker or host left, and runs asked for later, each tick (after commit):

    * runs asked for later than a broker countdown (`Connection.sync_due_at`) that are due;
    * connections whose run lease lapsed unreleased (its run died): a run now, so the dead
      host's merchants wait a lease and a tick, not the next request or schedule;
    * pending markers whose task never started (lost with a dead host's prefetch): a
      replacement pending task;
    * "running" rows whose heartbeat went quiet: closed as interrupted, whatever the trigger.
    """
    due, lapsed, stale = take_due_runs(), lapsed_leases(), stale_pending()
    for pk in dict.fromkeys([*due, *lapsed]):
        transaction.on_commit(lambda pk=pk: enqueue_run(pk))
    for pk in stale:
        transaction.on_commit(lambda pk=pk: enqueue_pending(pk))
    closed = close_interrupted(stale_runs())
    return {"due": len(due), "lapsed": len(lapsed), "stale_pending": len(stale), "closed": closed}
