"""Each enabled connection owns exactly one django-celery-beat PeriodicTask.

Beat reloads its whole schedule whenever a PeriodicTask is saved, so we save only when something
the schedule depends on has changed.
"""

import json

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

SYNC_TASK = "connector.tasks.sync_connection"


def schedule_name(connection_id: int) -> str:
    return f"connector-sync-{connection_id}"


def interval_for(minutes: int) -> IntervalSchedule:
    """The IntervalSchedule for `minutes`.

    IntervalSchedule has no unique constraint, so `get_or_create` can raise
    MultipleObjectsReturned once duplicates exist; take the oldest match instead.
    """
    existing = (
        IntervalSchedule.objects.filter(every=minutes, period=IntervalSchedule.MINUTES)
        .order_by("pk")
        .first()
    )
    return existing or IntervalSchedule.objects.create(
        every=minutes, period=IntervalSchedule.MINUTES
    )


def sync_schedule(connection) -> PeriodicTask | None:
    """Create or update the connection's PeriodicTask; return it, or None if nothing changed."""
    name = schedule_name(connection.pk)
    kwargs = json.dumps({"connection_id": connection.pk})
    with transaction.atomic():
        task = PeriodicTask.objects.select_for_update().filter(name=name).first()
        if task is None:
            return PeriodicTask.objects.create(
                name=name,
                task=SYNC_TASK,
                interval=interval_for(connection.sync_interval_minutes),
                kwargs=kwargs,
                enabled=connection.enabled,
                description=f"Sync returns for connection {connection.name!r}",
            )
        interval = task.interval
        wanted_interval_ok = (
            interval is not None
            and interval.every == connection.sync_interval_minutes
            and interval.period == IntervalSchedule.MINUTES
        )
        if (
            wanted_interval_ok
            and task.task == SYNC_TASK
            and task.kwargs == kwargs
            and task.enabled == connection.enabled
            and task.crontab_id is None
        ):
            return None
        if not wanted_interval_ok:
            task.interval = interval_for(connection.sync_interval_minutes)
        task.task = SYNC_TASK
        task.kwargs = kwargs
        task.enabled = connection.enabled
        task.crontab = None
        task.description = f"Sync returns for connection {connection.name!r}"
        task.save()
        return task


def remove_schedule(connection_id: int) -> None:
    PeriodicTask.objects.filter(name=schedule_name(connection_id)).delete()
