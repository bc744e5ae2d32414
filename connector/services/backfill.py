"""Backfill: import a connection's returns from a chosen date — the ones created before the
connection existed — and give each the credit it is due, exactly as a sync would.

* **Dry run first.** A dry run reads the platform and Brightpearl and writes nothing but the
  job's own progress: per return, whether it would be imported, and whether its credit would
  be created or an existing Brightpearl credit adopted.
* **Adopt, never double.** Credits are made by the sync's own credit step
  (`credits.create_credits`): one batched search of the credits already on the original
  orders, then adopt (ours by externalRef, another integration's by customer reference) or
  post — the exactly-once path, never a direct POST.
* **Both rate limits.** Brightpearl requests go through the connection's throttled client and
  the account's shared budget; the platform's through its adapter (Loop's 429 back-off,
  ReturnGO's shared daily call budget). A spent budget pauses the job (`retry_after`); the
  Celery task re-queues itself for then instead of sleeping in a worker slot.
* **Progress.** The platform is read in windows of creation dates (`WINDOW`); a finished
  window is committed to the job (`reached`, `committed_counts`), so a paused, crashed or
  re-delivered job resumes at the first unfinished window and counts nothing twice.
"""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from brightpearl import BrightpearlError, BudgetSpent, ThrottledError, TransportError
from returns import lifecycle
from returns.intake import upsert_rma
from returns.models import Rma
from returns.platforms.errors import BudgetExhausted, PlatformError, RateLimited

from ..models import BackfillJob, BindingState, Connection, SalesCredit, SyncRun
from .context import SyncContext
from .credits import (
    create_credits,
    credits_on_parents,
    customer_ref_for,
    external_ref_for,
    find_order_ids,
    match_existing_credit,
    release_attempts,
)
from .leases import run_heartbeat
from .platforms import has_adapter

WINDOW = timedelta(days=7)  # creation dates read (and committed) at a time
BATCH = 50  # returns taken in (and credited) at a time
PLAN_LIMIT = 1000
STALE = timedelta(minutes=5)  # a running job not heard from for this long was lost
Status = BackfillJob.Status


def request_backfill(
    connection: Connection, since: datetime, *, dry_run: bool, requested_by: str = ""
) -> BackfillJob:
    """A queued job (the caller runs it: a Celery task, or the command in the foreground)."""
    if not has_adapter(connection):
        raise ValueError(
            f"{connection.get_platform_display()} has no API to read returns from: its returns "
            "arrive through the intake API."
        )
    now = timezone.now()
    if since >= now:
        raise ValueError("the backfill date is in the future")
    return BackfillJob.objects.create(
        connection=connection,
        since=since,
        until=now,
        dry_run=dry_run,
        requested_by=requested_by[:150],
    )


@dataclass
class Outcome:
    job: BackfillJob | None
    retry_after: float | None = None  # paused: run again after this many seconds


def _claim(job_id: int) -> BackfillJob | None:
    """Running → this execution, unless another one is alive with it."""
    now = timezone.now()
    claimable = Q(status__in=[Status.QUEUED, Status.PAUSED]) | Q(
        status=Status.RUNNING, heartbeat_at__lt=now - STALE
    )
    taken = (
        BackfillJob.objects.filter(pk=job_id)
        .filter(claimable)
        .update(status=Status.RUNNING, heartbeat_at=now, started_at=Coalesce("started_at", now))
    )
    if not taken:
        return None
    return BackfillJob.objects.select_related("connection").get(pk=job_id)


def _check_again_in(job_id: int) -> float | None:
    """Another execution holds the job (a task redelivered after its worker died finds it
    still fresh): look again once that execution would count as lost, so a dead worker never
    leaves the job running forever. None when the job is over."""
    job = BackfillJob.objects.filter(pk=job_id, status=Status.RUNNING).first()
    if job is None or job.heartbeat_at is None:
        return None
    return max(1.0, (job.heartbeat_at + STALE - timezone.now()).total_seconds() + 1)


def run_backfill(job_id: int, *, on_progress=None) -> Outcome:
    """Run (or resume) a job to its end, a pause, or a failure. `on_progress(job)` is called
    after every batch (the command prints it)."""
    job = _claim(job_id)
    if job is None:
        return Outcome(None, retry_after=_check_again_in(job_id))
    ctx = SyncContext(connection=job.connection, dry_run=job.dry_run)
    if not job.dry_run:
        ctx.run = SyncRun.objects.create(
            connection=job.connection,
            trigger=SyncRun.Trigger.ADMIN if job.requested_by else SyncRun.Trigger.COMMAND,
            message=f"Backfill of returns created from {job.since:%Y-%m-%d} (job {job.pk}).",
            backfill_job=job,
        )
    outcome = Outcome(job)
    try:
        # The run row beats while this execution is alive: a sync of the connection leaves
        # it alone (a backfill holds no run lease), and once the beat stops (worker lost) the
        # next sync or the dispatcher closes it as interrupted (leases.stale_runs).
        with run_heartbeat(ctx.run.pk) if ctx.run else nullcontext():
            _run_windows(ctx, job, on_progress)
        _finish(job, Status.SUCCEEDED, _summary(job))
    except (BudgetSpent, RateLimited, ThrottledError, TransportError) as exc:
        outcome.retry_after = _pause_for(exc)
        _finish(job, Status.PAUSED, f"Paused: {exc}. Resumes by itself.", finished=False)
    except (BrightpearlError, PlatformError) as exc:
        _finish(job, Status.FAILED, f"Stopped: {exc}")
    finally:
        release_attempts(ctx.owner)
        _close_run(ctx, job)
    return outcome


def _pause_for(exc: Exception) -> float:
    if isinstance(exc, BudgetSpent):
        return float(exc.retry_after or 60)
    if isinstance(exc, BudgetExhausted):  # a daily budget: back after midnight UTC
        now = datetime.now(UTC)
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)
        return (tomorrow - now).total_seconds()
    return float(getattr(exc, "retry_after", None) or 60)


def _run_windows(ctx: SyncContext, job: BackfillJob, on_progress) -> None:
    platform = ctx.platform
    start = job.reached or job.since
    while start < job.until:
        end = min(start + WINDOW, job.until)
        counts, plan, batch = Counter(), [], []
        for neutral in platform.fetch_created(start, end):
            created = neutral.created_at
            if created is not None and created >= end and end < job.until:
                continue  # the next window's (Loop's bounds are inclusive)
            batch.append(neutral)
            if len(batch) >= BATCH:
                _take(ctx, job, batch, counts, plan)
                _save_live(ctx, job, counts, on_progress)
                batch = []
        _take(ctx, job, batch, counts, plan)
        _commit_window(ctx, job, end, counts, plan)
        if on_progress:
            on_progress(job)
        start = end


def _take(ctx, job, batch, counts, plan) -> None:
    if batch:
        (_preview if job.dry_run else _import)(ctx, batch, counts, plan)


def _merged(base: dict, counts: Counter) -> dict:
    total = Counter({k: v for k, v in base.items() if isinstance(v, int)})
    total.update(counts)
    return {name: count for name, count in total.items() if count}


def _save_live(ctx: SyncContext, job: BackfillJob, counts: Counter, on_progress) -> None:
    job.counts = _merged(job.committed_counts, counts)
    job.brightpearl_requests = ctx.requests_made
    job.heartbeat_at = timezone.now()
    job.save(update_fields=["counts", "brightpearl_requests", "heartbeat_at"])
    if on_progress:
        on_progress(job)


def _commit_window(ctx, job: BackfillJob, end: datetime, counts: Counter, plan: list) -> None:
    job.committed_counts = job.counts = _merged(job.committed_counts, counts)
    job.plan = (list(job.plan) + plan)[:PLAN_LIMIT]
    job.reached = end
    job.brightpearl_requests = ctx.requests_made
    job.heartbeat_at = timezone.now()
    job.save(
        update_fields=[
            "committed_counts",
            "counts",
            "plan",
            "reached",
            "brightpearl_requests",
            "heartbeat_at",
        ]
    )


def _finish(job: BackfillJob, status: str, message: str, *, finished: bool = True) -> None:
    job.status, job.message = status, message[:2000]
    job.finished_at = timezone.now() if finished else None
    job.save(update_fields=["status", "message", "finished_at"])


def _summary(job: BackfillJob) -> str:
    shown = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(job.counts.items()))
    verb = "Dry run finished (nothing written)" if job.dry_run else "Finished"
    return f"{verb}: {shown or 'no returns in the window'}."


def _close_run(ctx: SyncContext, job: BackfillJob) -> None:
    if ctx.run is None:
        return
    failed = sum(v for k, v in ctx.counts.items() if k.endswith("_failed"))
    status = {
        Status.SUCCEEDED: SyncRun.Status.PARTIAL if failed else SyncRun.Status.SUCCEEDED,
        Status.PAUSED: SyncRun.Status.PARTIAL,
    }.get(job.status, SyncRun.Status.FAILED)
    SyncRun.objects.filter(pk=ctx.run.pk).update(
        status=status,
        counts=dict(ctx.counts),
        brightpearl_requests=ctx.requests_made,
        message=f"{ctx.run.message} {job.message}"[:2000],
        finished_at=timezone.now(),
    )


# --- one batch, for real -------------------------------------------------------------------------
DONE = (BindingState.CREATED, BindingState.FAILED, BindingState.BLOCKED)


def _import(ctx: SyncContext, batch: list, counts: Counter, plan: list) -> None:
    """Take the returns in (the sync's intake), then credit those due (the sync's credit step:
    batched search of the orders' credits, adopt or post, exactly once)."""
    pks = []
    for neutral in batch:
        rma, created = upsert_rma(ctx.connection, neutral)
        counts["found"] += 1
        counts["imported" if created else "already_stored"] += 1
        pks.append(rma.pk)
    due = list(
        Rma.objects.filter(pk__in=pks, status=lifecycle.APPROVED, flagged=False)
        .exclude(sales_credit__state__in=DONE)
        .prefetch_related("lines")
        .order_by("pk")
    )
    counts["no_credit_due"] += len(pks) - len(due)
    if due and not ctx.connection.create_credits:
        counts["credits_switched_off"] += len(due)
        return
    if not due:
        return
    create_credits(ctx, due)
    for binding in SalesCredit.objects.filter(rma__in=due):
        if binding.state == BindingState.CREATED:
            counts["credits_adopted" if binding.adopted else "credits_created"] += 1
        elif binding.state == BindingState.BLOCKED:
            counts["flagged"] += 1
        elif binding.state == BindingState.FAILED:
            counts["failed"] += 1
        else:
            counts["credit_pending"] += 1


# --- one batch, dry run --------------------------------------------------------------------------
def _preview(ctx: SyncContext, batch: list, counts: Counter, plan: list) -> None:
    """What `_import` would do, read from the platform and Brightpearl; nothing written."""
    connection = ctx.connection
    ids = [str(n.external_id) for n in batch]
    stored = set(
        Rma.objects.filter(connection=connection, external_id__in=ids).values_list(
            "external_id", flat=True
        )
    )
    credited = set(
        SalesCredit.objects.filter(
            connection=connection, rma__external_id__in=ids, state__in=DONE
        ).values_list("rma__external_id", flat=True)
    )
    due = []
    for neutral in batch:
        key = str(neutral.external_id)
        counts["found"] += 1
        counts["already_stored" if key in stored else "would_import"] += 1
        status = lifecycle.map_platform_status(neutral.platform, neutral.platform_status)
        if key in credited or status != lifecycle.APPROVED:
            counts["no_credit_due"] += 1
            why = "already credited" if key in credited else f"{neutral.platform_status}"
            plan.append(f"{_name(neutral)}: {_stored_word(key, stored)}; no credit ({why}).")
        else:
            due.append(neutral)
    _preview_credits(ctx, due, stored, counts, plan)


def _name(neutral) -> str:
    return f"Return {neutral.rma_number or neutral.external_id} (order {neutral.order_name})"


def _stored_word(key: str, stored: set) -> str:
    return "already stored" if key in stored else "would import"


def _preview_credits(ctx, due: list, stored: set, counts: Counter, plan: list) -> None:
    # One batched sales-order search for the batch's orders, as the credit step finds them.
    found = find_order_ids(ctx, [(n.order_id, n.order_name) for n in due])
    parents = {n.external_id: parent for n, parent in zip(due, found, strict=True)}
    wanted = {p for p in parents.values() if p}
    known = credits_on_parents(ctx, wanted) if wanted else {}
    for neutral in due:
        head = f"{_name(neutral)}: {_stored_word(str(neutral.external_id), stored)}"
        parent = parents[neutral.external_id]
        if parent is None:
            counts["would_flag"] += 1
            plan.append(f"{head}; would flag it: the original order is not in Brightpearl.")
            continue
        refs = SimpleNamespace(
            external_ref=external_ref_for(ctx.connection, neutral),
            customer_ref=customer_ref_for(ctx.connection, neutral),
        )
        existing = match_existing_credit(refs, known.get(parent, []))
        if existing is not None:
            counts["would_adopt"] += 1
            plan.append(f"{head}; would adopt sales credit {existing} already on order {parent}.")
        else:
            counts["would_create"] += 1
            plan.append(f"{head}; would create a sales credit on order {parent}.")
