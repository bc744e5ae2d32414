"""Celery tasks: thin wrappers that load by ID, call a service, record the outcome."""

from celery import shared_task
from django.utils import timezone

from .models import Connection, SyncRun


@shared_task(name="connector.tasks.sync_connection")
def sync_connection(connection_id: int, trigger: str = SyncRun.Trigger.BEAT) -> int | None:
    """Scheduled sync of one connection.

    Placeholder until the sync engine lands: it records a run so the schedule can be seen
    working end to end (beat → broker → worker → sync log).
    """
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return None
    status = SyncRun.Status.SKIPPED
    message = "Sync engine not yet available: this run only proves the schedule works."
    if not connection.enabled:
        message = "Connection is disabled."
    run = SyncRun.objects.create(
        connection=connection,
        trigger=trigger,
        status=status,
        message=message,
        finished_at=timezone.now(),
    )
    return run.pk
