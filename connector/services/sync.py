"""One sync run of a connection: pull from the platform → credits → changes after the credit
(returns ended or edited on the platform, see after_credit.py) → receipts → refunds →
duplicate check (see duplicates.py).

The pull (listing the platform's changes) is the safety net beside the platform's webhooks: a
scheduled run skips it when poll_cadence.py says it is not due (ReturnGO's daily allowance).
Pushes to the platform (process / flag) happen inside the receipt step. Each step records its
items as SyncEvents; the run records its counts and the Brightpearl requests it used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from brightpearl import (
    AuthError,
    BrightpearlError,
    BudgetSpent,
    ServerError,
    ThrottledError,
    TransportError,
    TurnOver,
)
from returns import lifecycle
from returns.intake import upsert_rma
from returns.models import Rma
from returns.platforms.errors import PlatformError

from .. import metrics
from ..models import Connection, SyncEvent, SyncRun
from .after_credit import settle_changes
from .chunks import release_garbage
from .context import SyncContext
from .credits import create_credits, release_attempts
from .duplicates import check_duplicates
from .leases import (
    LeaseHeartbeat,
    acquire_run_lease,
    close_interrupted,
    lease_expires_at,
    release_run_lease,
    stale_runs,
)
from .poll_cadence import plan_poll, poll_interval
from .receipts import update_receipts
from .refunds import record_refunds

logger = logging.getLogger("connector.sync")
Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome

# Poll a little before the newest update seen: upserts are idempotent, late writes are not lost.
WATERMARK_OVERLAP = timedelta(minutes=5)
FIRST_POLL_WINDOW = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=15)


def pull_from_platform(ctx: SyncContext) -> None:
    platform = ctx.platform
    if platform is None or _poll_deferred(ctx):
        return
    connection = ctx.connection
    started = timezone.now()
    since = connection.platform_watermark or timezone.now() - FIRST_POLL_WINDOW
    since -= WATERMARK_OVERLAP
    keys = platform.held_raw_keys

    def held(ids: list[str], wanted: tuple[str, ...] = keys) -> dict[str, dict]:
        return held_copies(connection, ids, wanted)

    # The platform's clock may run ahead of ours: look a little into "the future" too.
    feed = platform.fetch_changed(since, timezone.now() + CLOCK_SKEW, held=held if keys else None)
    for neutral in feed:
        if (
            not neutral.refunds
            and not neutral.refunds_complete
            and lifecycle.map_platform_status(neutral.platform, neutral.platform_status)
            == lifecycle.CLOSED
        ):
            # A finished return's refunds may be only in its details (Loop's list omits them).
            neutral.refunds = platform.refunds(neutral.external_id)
        rma, created = upsert_rma(connection, neutral)
        ctx.counts["pulled"] += 1
        if created or rma.problems:
            ctx.record(
                Kind.INTAKE,
                Outcome.FLAGGED if rma.problems else Outcome.SUCCEEDED,
                rma.problems or f"New return from {connection.get_platform_display()}.",
                rma=rma,
            )
    stamps = {"platform_watermark": feed.max_updated_at} if feed.max_updated_at else {}
    if poll_interval(connection.platform):  # the poll's cadence counts from here
        stamps["platform_polled_at"] = started
    if stamps:
        Connection.objects.filter(pk=connection.pk).update(**stamps)
        for name, value in stamps.items():
            setattr(connection, name, value)
    ctx.cache["polled"] = True


def _poll_deferred(ctx: SyncContext) -> bool:
    """A scheduled run of a connection whose platform's webhooks are arriving, or whose daily
    allowance is low, lists its changes only as often as poll_cadence.py says; the run says
    so in its message (once, and not after it polled in an earlier pass)."""
    plan = plan_poll(ctx.connection, ctx.run.trigger if ctx.run else None)
    if plan.due:
        return False
    if not ctx.cache.get("polled") and not ctx.counts["poll_deferred"]:
        ctx.counts["poll_deferred"] = 1
        ctx.notes.append(plan.reason)
    return True


def held_copies(
    connection: Connection, external_ids: list[str], raw_keys: tuple[str, ...]
) -> dict[str, dict]:
    """What we hold of these returns, in one query: the adapter leaves out those whose listing
    shows nothing new, and asks for the whole copy (more keys) of the few it can bring up to
    date without reading them again. Only the parts of the raw payload it names are loaded."""
    rows = Rma.objects.filter(
        connection=connection, platform=connection.platform, external_id__in=external_ids
    ).values_list("external_id", "platform_updated_at", *(f"raw__{k}" for k in raw_keys))
    return {
        external_id: {"updated_at": updated_at, "raw": dict(zip(raw_keys, parts, strict=True))}
        for external_id, updated_at, *parts in rows
    }


STEPS = (
    ("pull", pull_from_platform),
    ("credits", create_credits),
    ("changes after credit", settle_changes),
    ("receipts", update_receipts),
    ("refunds", record_refunds),
    ("duplicate check", check_duplicates),
)


# A run serves the requests that arrive while it runs by taking another pass; after this many
# passes it hands the rest to a fresh task so one busy connection does not hold a worker.
MAX_PASSES = 5


def request_sync(connection_id: int) -> bool:
    """Remember that a sync was asked for. A run holding the lease sees it when it finishes and
    takes another pass, so a return that arrives mid-run waits seconds, not an interval.
    True for the request that raised the flag (the others are already covered)."""
    return bool(
        Connection.objects.filter(pk=connection_id, sync_requested=False).update(
            sync_requested=True
        )
    )


@dataclass
class SyncResult:
    """What one sync did, and what should happen next — the caller enqueues it (services never
    import tasks): `connector.tasks.after_sync`."""

    run: SyncRun  # unsaved (status skipped) when another run held the lease
    transient: bool = False  # Brightpearl was unavailable as a whole: worth retrying soon
    follow_up_at: datetime | None = None  # ask for another run of this connection then
    # The account's Brightpearl budget is spent: seconds until it is back (the task re-queues
    # itself then instead of sleeping in a worker slot).
    budget_retry_after: float | None = None
    # The run's turn on its queue ended (`tasks.sync_connection` gives a sync on the inbound
    # queue INBOUND_SYNC_TURN_SECONDS): the rest goes on in a follow-up on the bulk queue.
    turn_over: bool = False


def preview_sync(connection: Connection) -> SyncContext:
    """A dry run: every step inside a transaction that is rolled back. Local writes (intake of
    new returns) happen so the plan is faithful; nothing is written to Brightpearl or the
    platform (the steps check ctx.dry_run). The context holds what to print."""
    ctx = SyncContext(connection=connection, dry_run=True)
    with transaction.atomic():
        error = _run_steps(ctx)
        transaction.set_rollback(True)
    if error:
        ctx.printed.append(error)
    return ctx


def run_sync(
    connection: Connection,
    *,
    trigger: str = SyncRun.Trigger.BEAT,
    owner: str | None = None,
    resume_run: int | None = None,
) -> SyncResult:
    """Run every step, and again while new requests arrived meanwhile. ``resume_run``: the run
    this one continues (it was paused for budget): that row goes on, so staff read one run
    that paused N times, not N rows."""
    ctx = SyncContext(connection=connection)
    lease_owner = owner or ctx.owner
    first_request = request_sync(connection.pk)
    if not acquire_run_lease(connection.pk, lease_owner):
        # Not stored (it would be half of all rows): the request stays on the connection and
        # the run holding the lease takes another pass for it before it ends. Should that run
        # have died with its host, its lease lapses within RUN_LEASE_SECONDS: the request that
        # raised the flag asks for a run then, so the work is not left for the next schedule.
        skipped = SyncRun(
            connection=connection,
            trigger=trigger,
            status=SyncRun.Status.SKIPPED,
            message="Skipped: a sync of this connection is already running; it will take "
            "another pass for this request.",
            finished_at=timezone.now(),
        )
        metrics.incr("sync_runs", trigger, SyncRun.Status.SKIPPED)  # counted, not stored
        expires = lease_expires_at(connection.pk) if first_request else None
        return SyncResult(skipped, follow_up_at=expires)
    _mark_interrupted_runs(connection)
    run = _resumed(ctx, resume_run)
    if run is None:
        run = SyncRun.objects.create(connection=connection, trigger=trigger)
    ctx.run = run
    error, passes = "", 0
    try:
        with LeaseHeartbeat(connection.pk, lease_owner, run_id=run.pk):
            error, passes = _run_passes(ctx, lease_owner)
    finally:
        release_attempts(ctx.owner)
        release_run_lease(connection.pk, lease_owner)
    _close_run(run, ctx, error, passes)
    return SyncResult(
        run,
        transient=ctx.transient,
        follow_up_at=ctx.retry_at,
        budget_retry_after=ctx.budget_retry_after,
        turn_over=ctx.turn_over,
    )


PAUSES = "budget_pauses"  # in a run's counts: how often it paused for budget and went on
PAUSED = "Paused during "  # how the message of a run paused for budget begins


def _resumed(ctx: SyncContext, run_id: int | None) -> SyncRun | None:
    """The paused run this one continues, running again from now (it sorts, and settles the
    connection's problems, as the run going on now), with what it had counted; its message is
    written anew when it ends. None: it is not paused any more (pruned or closed meanwhile):
    a new row then."""
    if run_id is None:
        return None
    paused = SyncRun.objects.filter(
        pk=run_id,
        connection=ctx.connection,
        status=SyncRun.Status.PARTIAL,
        message__startswith=PAUSED,
    )
    now = timezone.now()
    again = {"status": SyncRun.Status.RUNNING, "finished_at": None, "message": ""}
    if not paused.update(**again, started_at=now, heartbeat_at=now):
        return None
    run = SyncRun.objects.get(pk=run_id)
    ctx.counts.update(run.counts)
    ctx.counts[PAUSES] += 1
    ctx.earlier_requests = run.brightpearl_requests
    return run


def _mark_interrupted_runs(connection: Connection) -> None:
    """We hold the lease, so a run still marked "running" that takes the lease died with its
    worker: say so. Webhook-driven runs and backfills do not take the lease and may be running
    alongside: those whose heartbeat went quiet for a lease's length (see leases.stale_runs)."""
    running = SyncRun.objects.filter(connection=connection, status=SyncRun.Status.RUNNING)
    close_interrupted(
        running.exclude(trigger=SyncRun.Trigger.WEBHOOK).filter(backfill_job__isnull=True)
    )
    close_interrupted(stale_runs(connection.pk))


def _run_passes(ctx: SyncContext, lease_owner: str) -> tuple[str, int]:
    """Run the steps; again while sync requests arrived during the pass (bounded)."""
    connection_id, passes = ctx.connection.pk, 0
    while True:
        passes += 1
        # Every request made until now is served by this pass.
        Connection.objects.filter(pk=connection_id).update(sync_requested=False)
        error = _run_steps(ctx)
        release_run_lease(connection_id, lease_owner)
        requested = Connection.objects.filter(pk=connection_id, sync_requested=True)
        if error or not requested.exists():
            return error, passes
        if passes >= MAX_PASSES:
            ctx.retry_at = ctx.retry_at or timezone.now()
            return error, passes
        if not acquire_run_lease(connection_id, lease_owner):
            return error, passes  # another run took it, and serves the request


def _close_run(run: SyncRun, ctx: SyncContext, error: str, passes: int) -> None:
    failed = sum(v for k, v in ctx.counts.items() if k.endswith("_failed"))
    flagged = sum(v for k, v in ctx.counts.items() if k.endswith("_flagged"))
    if error and ctx.budget_retry_after is not None:
        # Not a failure: the account's budget ran out and the run continues in a new task.
        run.status, run.message = SyncRun.Status.PARTIAL, error
    elif error:
        run.status, run.message = SyncRun.Status.FAILED, error
    elif failed or flagged:
        # A flagged return needs a person: the run did not simply succeed.
        run.status = SyncRun.Status.PARTIAL
        run.message = (
            "; ".join(
                part
                for part in (
                    f"{failed} item(s) failed" if failed else "",
                    f"{flagged} item(s) flagged" if flagged else "",
                )
                if part
            )
            + "; see the events."
        )
    else:
        run.status = SyncRun.Status.SUCCEEDED
    if ctx.notes:
        run.message = " ".join([run.message, *ctx.notes]).strip()
    if passes > 1:
        extra = f"{passes} passes: new work arrived while it ran."
        run.message = f"{run.message} {extra}".strip()
    if ctx.counts.get(PAUSES):
        extra = f"It went on after {ctx.counts[PAUSES]} pause(s) for the account's request budget."
        run.message = f"{run.message} {extra}".strip()
    run.counts = dict(ctx.counts)
    run.brightpearl_requests = ctx.earlier_requests + ctx.requests_made
    run.finished_at = timezone.now()
    run.save()


def _run_steps(ctx: SyncContext) -> str:
    """Run the steps; a step that fails as a whole stops the run with a clear message."""
    for name, step in STEPS:
        recorded = sum(ctx.counts.values())
        try:
            step(ctx)
        except AuthError as exc:
            return f"Brightpearl refused the credentials during {name}: {exc}"
        except TurnOver as exc:
            # Nothing was sent (as for a spent budget): the rest is handed on at once.
            ctx.transient, ctx.budget_retry_after, ctx.turn_over = True, 0.0, True
            return (
                f"Handed on during {name}: {exc}; the rest goes on in a follow-up run on the "
                "bulk queue, so this queue stays free for webhooks and new returns."
            )
        except BudgetSpent as exc:
            # Nothing was sent; the task re-queues itself for when the budget is back.
            ctx.transient, ctx.budget_retry_after = True, exc.retry_after
            return f"{PAUSED}{name}: the account's {exc}."
        except (ServerError, ThrottledError, TransportError) as exc:
            ctx.transient = True
            return f"Brightpearl was unavailable during {name}: {exc}"
        except BrightpearlError as exc:
            return f"Brightpearl error during {name}: {exc}"
        except PlatformError as exc:
            if name == "pull":
                ctx.record(
                    Kind.INTAKE, Outcome.FAILED, f"Could not read returns from the platform: {exc}"
                )
                logger.warning("connection %s: platform pull failed: %s", ctx.connection.pk, exc)
                continue  # the rest can still run on what we already have
            return f"Returns platform error during {name}: {exc}"
        finally:
            release_garbage(sum(ctx.counts.values()) - recorded)
    return ""
