"""Celery tasks: thin wrappers that load by ID, re-check state, call a service, record the
outcome. Enqueue them after commit (`transaction.on_commit`)."""

import logging
import random
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from brightpearl import one_turn

from . import metrics
from .models import Connection, SyncRun
from .queues import INBOUND, sync_kind
from .schedules import dispatch_due, recover
from .services import alerts, backfill
from .services.brightpearl import never_sleep_for_budget
from .services.inbound import due_again, due_events, process
from .services.inbound_wakeup import lower_marker, raise_marker
from .services.logs import prune
from .services.pending import (
    BROKER_COUNTDOWN_MAX_SECONDS,
    ask_for_run_at,
    clear_pending,
    raise_pending,
)
from .services.sync import run_sync

logger = logging.getLogger("connector.tasks")
SYNC_MAX_RETRIES = 5
# Spread the re-queued syncs of one throttled account so they do not all wake at once.
BUDGET_JITTER_SECONDS = 1.0


@shared_task(
    bind=True,
    name="connector.tasks.sync_connection",
    acks_late=True,
    reject_on_worker_lost=True,
)
def sync_connection(
    self,
    connection_id: int,
    trigger: str = SyncRun.Trigger.BEAT,
    follow_up: bool = False,
    pending: bool = False,
    resume_run: int | None = None,
) -> int | None:
    """Scheduled (or requested) sync of one connection. ``follow_up`` only routes the task
    (a backlog's further passes go to the bulk queue, see connector/queues.py). ``pending``:
    the connection's one pending task (`request_sync_soon`); it clears the marker before it
    reads any work, so a request from now on queues the next one. ``resume_run``: the run
    this task continues after a pause for budget (one row for the whole run).

    A sync on the inbound queue (asked for by an intake POST) has a turn of
    INBOUND_SYNC_TURN_SECONDS: a backlog's rest is handed to a follow-up on the bulk queue, so
    one merchant's backlog never holds the slots kept for webhooks and new returns.

    The run lease is owned by this task's ID, which a redelivered task keeps: after a worker
    crash the redelivery resumes at once, while an overlapping run is counted "skipped".
    """
    if pending:
        clear_pending(connection_id)
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return None
    if not connection.enabled:
        # Counted, not stored: the dispatcher queues no disabled connection, so this is a
        # task queued just before staff disabled it (the connection's page says it is off).
        metrics.incr("sync_runs", trigger, SyncRun.Status.SKIPPED)
        return None
    owner = f"task-{self.request.id}" if self.request.id else None
    turn = settings.INBOUND_SYNC_TURN_SECONDS if sync_kind(trigger, follow_up) == INBOUND else 0
    with never_sleep_for_budget(), one_turn(turn):
        result = run_sync(connection, trigger=trigger, owner=owner, resume_run=resume_run)
    if result.budget_retry_after is not None:
        # The account's budget is spent (or the run's turn on the inbound queue is over):
        # free this slot for other merchants and come back when the throttle says the budget
        # is there again (not a retry: nothing failed).
        delay = result.budget_retry_after + random.uniform(0, BUDGET_JITTER_SECONDS)
        if result.turn_over:  # the backlog goes on in the bulk queue, whatever is pending
            _hand_on(connection_id, trigger, delay)
        else:
            _come_back(connection_id, trigger, follow_up, delay, result.run.pk)
        return result.run.pk
    after_sync(result)
    if result.transient and self.request.retries < SYNC_MAX_RETRIES:
        # Brightpearl was unavailable as a whole: try again soon, backing off (capped).
        delay = min(30 * 2**self.request.retries, settings.CELERY_TASK_RETRY_BACKOFF_MAX)
        if delay > BROKER_COUNTDOWN_MAX_SECONDS:
            # A long backoff is kept in the database, not in the broker (see after_sync).
            ask_for_run_at(connection_id, timezone.now() + timedelta(seconds=delay))
            return result.run.pk
        raise self.retry(countdown=delay)
    return result.run.pk


def _hand_on(connection_id: int, trigger: str, delay: float) -> None:
    """The rest of a backlog whose turn on the inbound queue is over, on the bulk queue. At
    most one such follow-up per turn (a turn is INBOUND_SYNC_TURN_SECONDS of work); should the
    broker refuse it, the run is asked for in the database and the dispatcher queues it."""
    try:
        sync_connection.apply_async(
            (connection_id,), {"trigger": trigger, "follow_up": True}, countdown=delay
        )
    except Exception:
        logger.exception("connection %s: the backlog's follow-up was not queued", connection_id)
        ask_for_run_at(connection_id, timezone.now())


def _come_back(
    connection_id: int, trigger: str, follow_up: bool, delay: float, run_id: int
) -> None:
    """A run paused for budget comes back as the connection's pending task: the marker is
    raised, dated when the task is due (so the dispatcher does not take the countdown for a
    lost task), and intake POSTs and webhooks meanwhile find it raised and queue nothing. If a
    request raised it first, that request's task does the work: nothing more to queue. The
    task coming back continues the paused run's row (`run_sync(resume_run=...)`)."""
    if not raise_pending(connection_id, at=timezone.now() + timedelta(seconds=delay)):
        return
    try:
        sync_connection.apply_async(
            (connection_id,),
            {
                "trigger": trigger,
                "follow_up": follow_up,
                "pending": True,
                "resume_run": run_id,
            },
            countdown=delay,
        )
    except Exception:
        clear_pending(connection_id)  # the broker refused it: the next request queues one
        raise


@shared_task(name="connector.tasks.dispatch_due_syncs")
def dispatch_due_syncs() -> int:
    """Beat (every minute): queue the scheduled syncs that are due, spread over the minute
    (see connector/schedules.py). Replaces one beat entry per connection. The same tick
    queues runs asked for later and recovers what a lost worker or host left behind."""
    recovered = recover(enqueue_pending=_enqueue_pending_sync, enqueue_run=_enqueue_follow_up)
    if any(recovered.values()):
        logger.info("dispatcher: %s", recovered)
    return len(dispatch_due(enqueue=_enqueue_scheduled_sync))


def _enqueue_scheduled_sync(connection_id: int, countdown: float) -> None:
    sync_connection.apply_async(
        (connection_id,), {"trigger": SyncRun.Trigger.BEAT}, countdown=countdown
    )


@shared_task(name="connector.tasks.prune_sync_logs")
def prune_sync_logs() -> int:
    """Keep the log useful: successful and skipped runs for SYNC_LOG_KEEP_DAYS, the rest
    (failed, partial) for SYNC_LOG_KEEP_FAILED_DAYS."""
    return prune(
        keep_days=settings.SYNC_LOG_KEEP_DAYS, keep_failed_days=settings.SYNC_LOG_KEEP_FAILED_DAYS
    )


@shared_task(name="connector.tasks.send_alert_digests")
def send_alert_digests() -> int:
    """Housekeeping (beat, every minute): e-mail / post the digests of new problems that are
    due (each connection's "at most every N minutes")."""
    return alerts.send_due_digests()


def after_sync(result) -> None:
    """What a sync asked for next (`SyncResult.follow_up_at`: attempts left in flight, more
    work than its passes, a lease held by a run that may have died): a run then. A short
    delay is a broker countdown; a longer one is kept in the database and queued by the
    dispatcher when due, so no message waits in Redis longer than BROKER_COUNTDOWN_MAX_SECONDS
    (the visibility timeout stays short: docs/deployment.md)."""
    when = result.follow_up_at
    if when is None:
        return
    connection_id = result.run.connection_id
    delay = max(1.0, (when - timezone.now()).total_seconds() + 1)
    if delay > BROKER_COUNTDOWN_MAX_SECONDS:
        ask_for_run_at(connection_id, when + timedelta(seconds=1))
        return
    transaction.on_commit(lambda: _enqueue_follow_up(connection_id, delay))


def _enqueue_follow_up(connection_id: int, countdown: float | None = None) -> None:
    sync_connection.apply_async(
        (connection_id,), {"trigger": SyncRun.Trigger.BEAT, "follow_up": True}, countdown=countdown
    )


def request_syncs_now(connection_ids, trigger: str) -> tuple[list[int], list[int]]:
    """Staff (or the demo) ask for a sync of these connections now: at most one pending task
    per connection however often they ask, as for intake POSTs (services/pending.py). Returns
    (queued, already pending): a connection whose sync is already pending gets no second task —
    the waiting one serves this request too, since it reads its work only when it starts.

    The marker is raised at once, so the caller can tell staff which it was; the task is queued
    once the current transaction commits. Call it after the writes the sync should see have
    committed (admin actions run in autocommit): a sync already pending could otherwise start
    before they are visible."""
    queued, waiting = [], []
    for pk in dict.fromkeys(connection_ids):
        if raise_pending(pk):
            queued.append(pk)
            transaction.on_commit(lambda pk=pk: _enqueue_raised(pk, trigger))
        else:
            waiting.append(pk)
    return queued, waiting


def request_sync_soon(connection_id: int, trigger: str) -> None:
    """An intake POST or a webhook wants a sync now: at most one pending task per connection,
    however many arrive (services/pending.py). Called inside the request's transaction; the
    marker is raised after commit, once the request's data is visible to the task."""
    transaction.on_commit(lambda: _queue_if_first(connection_id, trigger))


def _queue_if_first(connection_id: int, trigger: str) -> None:
    if raise_pending(connection_id):
        _enqueue_raised(connection_id, trigger)


def _enqueue_raised(connection_id: int, trigger: str) -> None:
    """Queue the pending task for the marker this caller raised."""
    try:
        _enqueue_pending_sync(connection_id, trigger)
    except Exception:
        clear_pending(connection_id)  # the broker refused it: let the next request try
        raise


def _enqueue_pending_sync(connection_id: int, trigger: str = SyncRun.Trigger.INTAKE) -> None:
    sync_connection.apply_async((connection_id,), {"trigger": trigger, "pending": True})


# --- inbound events: one task for every source -------------------------------------------------


@shared_task(
    bind=True,
    name="connector.tasks.process_inbound_event",
    acks_late=True,
    reject_on_worker_lost=True,
)
def process_inbound_event(self, event_id: int) -> str:
    """Process one stored inbound event (any source) through the one pipeline; when it is due
    again (a transient failure), queue it for then. If that queueing fails, housekeeping
    (`redispatch_inbound_events`) picks the event up once it is overdue."""
    # The claim is owned by this task's ID, which a task redelivered after its worker died
    # keeps: it resumes at once instead of waiting for the claim's lease to lapse.
    owner = f"task-{self.request.id}" if self.request.id else ""
    with never_sleep_for_budget():  # a spent budget re-queues the event (not an attempt)
        step = process(event_id, owner=owner)
    _queue_when_due(event_id, step.retry_at)
    return step.status


def _queue_when_due(event_id: int, retry_at) -> None:
    """A long backoff stays in the database (the event's `next_attempt_at`): housekeeping
    queues it once due, so no message waits in Redis past its visibility timeout."""
    if retry_at is None:
        return
    if (retry_at - timezone.now()).total_seconds() <= BROKER_COUNTDOWN_MAX_SECONDS:
        process_inbound_event.apply_async((event_id,), eta=retry_at)


# One drain works through at most this many events, or this many seconds, then hands the rest
# to the next drain: a flood from one merchant never holds a worker slot for long.
DRAIN_MAX_EVENTS = 200
DRAIN_MAX_SECONDS = 60.0


@shared_task(
    bind=True,
    name="connector.tasks.drain_inbound_events",
    acks_late=True,
    reject_on_worker_lost=True,
)
def drain_inbound_events(self, connection_id: int) -> int:
    """Process every due inbound event of one connection, oldest first (the webhook views
    queue one drain per connection, not a task per delivery: services/inbound_wakeup.py).
    The marker is lowered before any event is read, so an event stored from now on queues
    the next drain; the last read starts once the deliveries that trusted their memory of
    the marker have stored theirs. Returns how many events were processed."""
    connection = Connection.objects.filter(pk=connection_id).only("pk", "created_at").first()
    if connection is None:
        return 0
    settled_at = lower_marker(connection)
    owner = f"task-{self.request.id}" if self.request.id else ""
    deadline = time.monotonic() + DRAIN_MAX_SECONDS
    handled = 0
    with never_sleep_for_budget():  # a spent budget pauses the event (not an attempt)
        while True:
            read_at = time.monotonic()
            for event_id in due_events(connection_id, DRAIN_MAX_EVENTS - handled):
                _queue_when_due(event_id, process(event_id, owner=owner).retry_at)
                handled += 1
                if time.monotonic() > deadline:
                    break
            if handled >= DRAIN_MAX_EVENTS or time.monotonic() > deadline:
                wake_inbound(connection)  # more may be waiting: the next drain takes them
                return handled
            if read_at >= settled_at:
                return handled
            time.sleep(max(settled_at - time.monotonic(), 0.0))  # a fraction of a second


def wake_inbound(connection: Connection) -> None:
    """Called once a delivery is stored (committed): queue a drain of the connection's events
    unless one is pending. If the broker refuses, the marker is lowered again (the next
    delivery tries) and the error propagates (the view answers 5xx so the sender retries;
    housekeeping dispatches the stored event once overdue)."""
    if not raise_marker(connection):
        return
    try:
        drain_inbound_events.delay(connection.pk)
    except Exception:
        lower_marker(connection)
        raise


# The names older releases queued; a message already in the broker still finds its task.
@shared_task(name="connector.tasks.process_webhook_event", acks_late=True)
def process_webhook_event(event_id: int) -> str:
    return process_inbound_event.run(event_id)


@shared_task(name="connector.tasks.process_platform_event", acks_late=True)
def process_platform_event(event_id: int) -> str:
    return process_inbound_event.run(event_id)


@shared_task(name="connector.tasks.redispatch_inbound_events")
def redispatch_inbound_events() -> int:
    """Housekeeping (beat, every minute): queue again every event whose processing did not
    finish — a lost broker message, a crashed worker, a locked database — and fail those
    out of attempts, with the reason. Nothing stays `received` forever."""
    ids = due_again()
    for pk in ids:
        process_inbound_event.delay(pk)
    return len(ids)


def enqueue_events(event_ids) -> None:
    """Queue processing of stored events once the current transaction commits."""
    for pk in event_ids:
        transaction.on_commit(lambda pk=pk: process_inbound_event.delay(pk))


# --- backfill: bulk work, on its own queue -------------------------------------------------------


@shared_task(
    bind=True,
    name="connector.tasks.run_backfill",
    acks_late=True,
    reject_on_worker_lost=True,
)
def run_backfill(self, job_id: int) -> str | None:
    """Run (or resume) a backfill job. A spent rate budget (Brightpearl's or the platform's)
    pauses it: the task re-queues itself for when the budget is back instead of sleeping in a
    worker slot. A redelivered task finds the job running and fresh, or resumes it when its
    heartbeat went quiet (connector/services/backfill.py)."""
    with never_sleep_for_budget():
        outcome = backfill.run_backfill(job_id)
    if outcome.retry_after is not None:
        delay = outcome.retry_after + random.uniform(0, BUDGET_JITTER_SECONDS)
        # A daily budget's wait (hours) is taken in hops: no message waits in Redis past
        # its visibility timeout (a woken job finds the budget still spent and pauses again).
        run_backfill.apply_async((job_id,), countdown=min(delay, BROKER_COUNTDOWN_MAX_SECONDS))
    return outcome.job.status if outcome.job is not None else None


def enqueue_backfill(job_id: int) -> None:
    transaction.on_commit(lambda: run_backfill.delay(job_id))
