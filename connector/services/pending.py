"""At most one pending sync per connection, and runs asked for later kept in the database.

Coalescing. Every intake POST and every webhook that wants a sync calls `raise_pending` after
its own data has committed. It is a conditional UPDATE: only the request that finds no pending
marker (`Connection.sync_queued_at`) raises it, and only that request queues a task. The task
clears the marker when it starts, before it reads any work (`clear_pending`), so:

* a request whose data committed before the task started is served by that task (the data was
  there before the marker was seen raised);
* a request arriving once the task has started finds the marker clear and queues the next
  task; should that task find the first still running, it leaves `sync_requested` set and the
  running one takes another pass before it ends (services/sync.py). No wakeup is lost at the
  very end of a run either: the marker was cleared at its start.

A marker older than `SYNC_PENDING_STALE_SECONDS` belongs to a task that never started (its
message was lost with a dead host's prefetch, or the broker refused it): the dispatcher queues
a replacement (`stale_pending`), so a lost message costs minutes, not the next schedule. (A
task merely waiting that long in a busy queue gets a twin: the run lease lets one run at a
time, and the other is counted "skipped".)

A run paused because its account's budget is spent comes back as the connection's pending
task (`tasks._come_back`), its marker dated when it is due: a throttled merchant's intake POSTs
while it waits queue nothing more. Should a request have raised the marker first, that
request's task does the work (and pauses in turn if the budget is still spent).

Later runs. A run asked for further ahead than a broker countdown should carry (a follow-up
after an attempt in flight, a retry's backoff) is stored in `Connection.sync_due_at`
(`ask_for_run_at`) and queued by the dispatcher when due (`take_due_runs`): Redis then never
holds a long-delayed message, and its visibility timeout can stay short (docs/deployment.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import Connection

# The longest delay handed to the broker as a countdown (a lapsed run lease, 60 s, fits);
# anything longer goes to the database. The visibility timeout must exceed it plus the hard
# time limit (system check connector.E105).
BROKER_COUNTDOWN_MAX_SECONDS = 120


def pending_stale_after() -> timedelta:
    return timedelta(seconds=settings.SYNC_PENDING_STALE_SECONDS)


def raise_pending(connection_id: int, at: datetime | None = None) -> bool:
    """True for the one request that raised the marker: it queues the task; the others are
    covered by that task. ``at``: when the task is due (a countdown), so the dispatcher does
    not take the wait for a lost task."""
    return bool(
        Connection.objects.filter(pk=connection_id, sync_queued_at__isnull=True).update(
            sync_queued_at=at or timezone.now()
        )
    )


def clear_pending(connection_id: int) -> None:
    """The pending task started: requests from now on queue the next one."""
    Connection.objects.filter(pk=connection_id).update(sync_queued_at=None)


def stale_pending(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Connections whose pending task never started: the marker is renewed (conditionally, so
    two dispatchers never both take one) and their IDs returned to queue a replacement."""
    now = now or timezone.now()
    cutoff = now - pending_stale_after()
    taken = []
    for pk, when in Connection.objects.filter(enabled=True, sync_queued_at__lt=cutoff).values_list(
        "pk", "sync_queued_at"
    )[:limit]:
        if Connection.objects.filter(pk=pk, sync_queued_at=when).update(sync_queued_at=now):
            taken.append(pk)
    return taken


def ask_for_run_at(connection_id: int, when: datetime) -> None:
    """A run of this connection at `when` (the earliest of what was asked, if several)."""
    Connection.objects.filter(pk=connection_id).filter(
        Q(sync_due_at__isnull=True) | Q(sync_due_at__gt=when)
    ).update(sync_due_at=when)


def take_due_runs(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Connections whose asked-for run is due; each is taken once (conditional UPDATE)."""
    now = now or timezone.now()
    taken = []
    for pk, when in (
        Connection.objects.filter(sync_due_at__lte=now)
        .order_by("sync_due_at")
        .values_list("pk", "sync_due_at")[:limit]
    ):
        if Connection.objects.filter(pk=pk, sync_due_at=when).update(sync_due_at=None):
            taken.append(pk)
    return taken


def lapsed_leases(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Connections whose run lease lapsed without being released: the run holding it died
    with its worker or host. The lease is cleared (conditionally) and the IDs returned, so a
    run is queued now instead of waiting for the next request or schedule."""
    now = now or timezone.now()
    taken = []
    for pk, owner, until in (
        Connection.objects.exclude(sync_lease_owner="")
        .filter(sync_lease_expires_at__lt=now)
        .values_list("pk", "sync_lease_owner", "sync_lease_expires_at")[:limit]
    ):
        lapsed = Connection.objects.filter(
            pk=pk, sync_lease_owner=owner, sync_lease_expires_at=until
        )
        if lapsed.update(sync_lease_owner="", sync_lease_expires_at=None):
            taken.append(pk)
    return taken
