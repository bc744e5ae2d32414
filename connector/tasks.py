"""Celery tasks: thin wrappers that load by ID, re-check state, call a service, record the
outcome. Enqueue them after commit (`transaction.on_commit`)."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from .models import Connection, SyncRun

logger = logging.getLogger("connector.tasks")
SYNC_MAX_RETRIES = 5


@shared_task(
    bind=True,
    name="connector.tasks.sync_connection",
    acks_late=True,
    reject_on_worker_lost=True,
)
def sync_connection(self, connection_id: int, trigger: str = SyncRun.Trigger.BEAT) -> int | None:
    """Scheduled (or requested) sync of one connection.

    The run lease is owned by this task's ID, which a redelivered task keeps: after a worker
    crash the redelivery resumes at once, while an overlapping run records "skipped".
    """
    from .services.sync import run_sync

    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return None
    if not connection.enabled:
        run = SyncRun.objects.create(
            connection=connection,
            trigger=trigger,
            status=SyncRun.Status.SKIPPED,
            message="Skipped: the connection is disabled.",
        )
        return run.pk
    owner = f"task-{self.request.id}" if self.request.id else None
    run = run_sync(connection, trigger=trigger, owner=owner)
    if getattr(run, "transient", False) and self.request.retries < SYNC_MAX_RETRIES:
        # Brightpearl was unavailable as a whole: try again soon, backing off (capped).
        delay = min(30 * 2**self.request.retries, settings.CELERY_TASK_RETRY_BACKOFF_MAX)
        raise self.retry(countdown=delay)
    return run.pk


@shared_task(name="connector.tasks.prune_sync_logs")
def prune_sync_logs() -> int:
    """Keep the log useful: successful and skipped runs for SYNC_LOG_KEEP_DAYS, the rest
    (failed, partial) for SYNC_LOG_KEEP_FAILED_DAYS."""
    from .services.logs import prune

    return prune(
        keep_days=settings.SYNC_LOG_KEEP_DAYS, keep_failed_days=settings.SYNC_LOG_KEEP_FAILED_DAYS
    )


def enqueue_sync(connection_ids, trigger: str) -> None:
    """Queue one sync per connection once the current transaction commits."""
    for pk in connection_ids:
        transaction.on_commit(lambda pk=pk: sync_connection.delay(pk, trigger=trigger))


# Webhook events: retry transient Brightpearl failures with capped exponential backoff.
WEBHOOK_MAX_RETRIES = 6
WEBHOOK_BACKOFF_CAP_SECONDS = 120


def webhook_retry_delay(retries: int) -> int:
    return min(WEBHOOK_BACKOFF_CAP_SECONDS, 2 ** (retries + 1))


@shared_task(
    bind=True,
    name="connector.tasks.process_webhook_event",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=WEBHOOK_MAX_RETRIES,
)
def process_webhook_event(self, event_id: int) -> str | None:
    """Process one stored Brightpearl webhook event; ends processed, ignored or failed.

    Only an event still `received` is processed (a duplicate task, or one for an event staff
    already handled, does nothing). Transient Brightpearl errors are retried with backoff; a
    4xx or anything else ends in a recorded `failed` at once.
    """
    from brightpearl import BrightpearlError

    from .models import WebhookEvent
    from .services.brightpearl_events import TRANSIENT_ERRORS, process_event

    event = (
        WebhookEvent.objects.select_related("connection")
        .filter(pk=event_id, source=WebhookEvent.Source.BRIGHTPEARL)
        .first()
    )
    if event is None or event.status != WebhookEvent.Status.RECEIVED:
        return None if event is None else event.status
    WebhookEvent.objects.filter(pk=event.pk).update(attempts=event.attempts + 1)
    try:
        result = process_event(event)
    except TRANSIENT_ERRORS as exc:
        if self.request.retries < self.max_retries:
            WebhookEvent.objects.filter(pk=event.pk).update(error=f"Retrying after: {exc}"[:2000])
            raise self.retry(countdown=webhook_retry_delay(self.request.retries)) from exc
        return _finish_event(event.pk, WebhookEvent.Status.FAILED, f"Gave up: {exc}")
    except BrightpearlError as exc:
        return _finish_event(event.pk, WebhookEvent.Status.FAILED, f"Brightpearl refused: {exc}")
    except Exception as exc:
        logger.exception("webhook event %s failed", event.pk)
        return _finish_event(event.pk, WebhookEvent.Status.FAILED, f"{type(exc).__name__}: {exc}")
    # The reason matters for ignored events; a processed one's work is in its sync run.
    note = "" if result.status == WebhookEvent.Status.PROCESSED else result.message
    return _finish_event(event.pk, result.status, note)


def _finish_event(event_id: int, status: str, message: str) -> str:
    from django.utils import timezone

    from .models import WebhookEvent

    WebhookEvent.objects.filter(pk=event_id).update(
        status=status, error=message[:2000], processed_at=timezone.now()
    )
    return status


@shared_task(
    bind=True,
    name="connector.tasks.process_platform_event",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the service counts attempts on the event and gives up into "failed"
)
def process_platform_event(self, event_id: int) -> str:
    """Process one stored Loop / ReturnGO webhook: re-fetch the return, upsert, act.
    Transient failures come back after a capped, jittered backoff; 4xx are never retried."""
    from .services.platform_events import RetryLater, process_event

    try:
        return process_event(event_id)
    except RetryLater as exc:
        raise self.retry(countdown=exc.delay, exc=exc) from exc
