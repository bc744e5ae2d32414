"""Processing one stored returns-platform webhook (Loop, ReturnGO).

The webhook body is only a hint that names a return. Processing re-fetches that return from
the platform, upserts it (idempotent, never backwards), and then does at once what serves
latency: a newly approved RMA gets its sales credit (the same exactly-once path as the
scheduled sync), new refunds on a credited RMA become customer payments. Everything else
(receipts, process / flag on the platform) stays with the scheduled sync.

Because every delivery re-reads the current state, duplicates, replays and out-of-order
deliveries all end in the same place. `handle` is this source's handler in the one inbound
pipeline (`services/inbound.py`), which records the outcome on the `WebhookEvent`; the work
itself is a `SyncRun` with trigger "webhook" whose `SyncEvent`s say what was done to the RMA.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from brightpearl import AuthError as BrightpearlAuthError
from brightpearl import BrightpearlError, BudgetSpent, ServerError, ThrottledError, TransportError
from returns import lifecycle
from returns.intake import upsert_rma
from returns.models import Refund, Rma
from returns.platforms import registry
from returns.platforms.errors import NotFound, PlatformError, RateLimited

from ..models import BindingState, Connection, SyncEvent, SyncRun, WebhookEvent
from . import event_outcomes as inbound
from .after_credit import settle_changes
from .context import SyncContext
from .credits import create_credits, release_attempts
from .leases import run_heartbeat
from .platforms import adapter_for
from .refunds import record_refunds

logger = logging.getLogger("connector.webhooks")
Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome

# The platform client retries little itself: the pipeline's backoff is the patient one, and a
# worker is not held for minutes by one webhook.
CLIENT_OPTIONS = {"max_retries": 1, "backoff": 0.5, "backoff_cap": 5.0}
TRANSIENT_BRIGHTPEARL = (ServerError, ThrottledError, TransportError)


def handle(event: WebhookEvent) -> inbound.Outcome:
    """The inbound pipeline's handler for Loop / ReturnGO events. Raises `RetryLater` for a
    transient failure and `GiveUp` for a permanent one, after closing the event's sync run."""
    connection = event.connection
    reason = _reason_to_ignore(connection, event)
    if reason:
        return inbound.Outcome(WebhookEvent.Status.IGNORED, reason)

    run = SyncRun.objects.create(connection=connection, trigger=SyncRun.Trigger.WEBHOOK)
    ctx = SyncContext(connection=connection, run=run)
    try:
        with run_heartbeat(run.pk):  # a worker lost mid-event leaves a row closed later
            status, message = _act(ctx, event)
    except _Transient as exc:
        _close_run(ctx, SyncRun.Status.FAILED, str(exc))
        raise inbound.RetryLater(str(exc), exc.retry_after) from exc
    except _Permanent as exc:
        _close_run(ctx, SyncRun.Status.FAILED, str(exc))
        raise inbound.GiveUp(str(exc)) from exc
    except BudgetSpent as exc:  # nothing half-done (exactly_once.py); the pipeline re-queues
        _close_run(ctx, SyncRun.Status.PARTIAL, f"Paused: the account's {exc}.")
        raise
    except Exception as exc:  # a bug: the run says so; the pipeline records it on the event
        _close_run(ctx, SyncRun.Status.FAILED, f"{exc.__class__.__name__}: {exc}")
        raise
    finally:
        release_attempts(ctx.owner)
    failed = sum(v for k, v in ctx.counts.items() if k.endswith("_failed"))
    _close_run(
        ctx,
        SyncRun.Status.PARTIAL if failed else SyncRun.Status.SUCCEEDED,
        f"{failed} item(s) failed; see the events." if failed else message,
    )
    return inbound.Outcome(status, message)


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Permanent(Exception):
    pass


def _reason_to_ignore(connection: Connection, event: WebhookEvent) -> str:
    if not connection.enabled:
        return "The connection is disabled."
    if connection.platform != event.source:
        return (
            f"The connection's platform is {connection.platform}, not {event.source} "
            "(changed after the webhook arrived)."
        )
    if not event.resource_ids:
        return "The webhook names no return."
    spec = registry.find(event.source)
    if spec is not None and event.event in spec.news_free_events:
        return (
            f"{spec.label} event {event.event} tells the connector nothing it acts on "
            "(goods-in comes from Brightpearl): not re-fetched, to save the platform's calls."
        )
    return ""


def _act(ctx: SyncContext, event: WebhookEvent) -> tuple[str, str]:
    connection = ctx.connection
    adapter = adapter_for(connection, **CLIENT_OPTIONS)
    external_id = event.resource_ids
    try:
        neutral = adapter.fetch(external_id)
    except NotFound:
        return (
            WebhookEvent.Status.IGNORED,
            f"The platform does not know return {external_id} (deleted, or not a return ID).",
        )
    except RateLimited as exc:
        raise _Transient(f"Rate limited by the platform: {exc}", exc.retry_after) from exc
    except PlatformError as exc:
        if exc.retryable:
            raise _Transient(f"Platform error: {exc}") from exc
        raise _Permanent(f"The platform refused the re-fetch (not retried): {exc}") from exc

    rma, created = upsert_rma(connection, neutral)
    ctx.record(
        Kind.INTAKE,
        Outcome.FLAGGED if rma.problems else Outcome.SUCCEEDED,
        rma.problems
        or f"{'New return' if created else 'Return updated'} from webhook {event.event or '?'} "
        f"(platform status {rma.platform_status or '?'}).",
        rma=rma,
    )
    try:
        done = _credit_if_due(ctx, rma) + settle_changes(ctx, [rma]) + _record_new_refunds(ctx, rma)
    except BrightpearlAuthError as exc:
        raise _Permanent(f"Brightpearl refused the credentials: {exc}") from exc
    except TRANSIENT_BRIGHTPEARL as exc:
        raise _Transient(f"Brightpearl error: {exc}") from exc
    except BrightpearlError as exc:
        raise _Permanent(f"Brightpearl refused a request (not retried): {exc}") from exc
    rma.refresh_from_db()
    summary = f"RMA {rma.rma_number or rma.external_id} is {rma.status}"
    if rma.flagged:
        summary += f" (flagged: {rma.flag_reason})"
    return WebhookEvent.Status.PROCESSED, "; ".join([summary, *done]) + "."


def _credit_if_due(ctx: SyncContext, rma: Rma) -> list[str]:
    """An approved, unflagged RMA without a finished credit: make it now (exactly once —
    `create_credits` claims the binding and searches Brightpearl before posting)."""
    if not ctx.connection.create_credits:
        return []
    due = (
        Rma.objects.filter(pk=rma.pk, status=lifecycle.APPROVED, flagged=False)
        .exclude(
            sales_credit__state__in=[
                BindingState.CREATED,
                BindingState.FAILED,
                BindingState.BLOCKED,
            ]
        )
        .prefetch_related("lines")
        .first()
    )
    if due is None:
        return []
    create_credits(ctx, [due])
    return ["credit step run"]


def _record_new_refunds(ctx: SyncContext, rma: Rma) -> list[str]:
    if not ctx.connection.record_refunds:
        return []
    refunds = list(
        Refund.objects.filter(rma=rma, rma__sales_credit__state=BindingState.CREATED, amount__gt=0)
        .exclude(payment__state__in=[BindingState.CREATED, BindingState.FAILED])
        .select_related("rma", "rma__sales_credit")
        .order_by("pk")
    )
    if not refunds:
        return []
    record_refunds(ctx, refunds)
    return [f"{len(refunds)} refund(s) considered"]


def _close_run(ctx: SyncContext, status: str, message: str) -> None:
    run = ctx.run
    run.status = status
    run.message = message[:2000]
    run.counts = dict(ctx.counts)
    run.brightpearl_requests = ctx.requests_made
    run.finished_at = timezone.now()
    run.save()
