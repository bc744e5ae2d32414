"""Celery tasks: thin wrappers that load by ID, re-check state, call a service, record the
outcome. Enqueue them after commit (`transaction.on_commit`)."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from .models import Connection, SyncRun

logger = logging.getLogger("connector.tasks")


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
