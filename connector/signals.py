"""Keep a connection's next scheduled sync in step with its interval, after commit; keep the
open problems in step with the sync log."""

from datetime import timedelta

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from .models import Connection, SyncEvent, SyncRun
from .schedules import first_sync_at
from .services import problems


@receiver(post_save, sender=Connection)
def connection_saved(sender, instance: Connection, **kwargs) -> None:
    connection_id = instance.pk

    def apply() -> None:
        current = Connection.objects.filter(pk=connection_id).first()
        if current is None or current.next_sync_at is None:
            return  # the dispatcher gives it its phase
        now = timezone.now()
        interval = timedelta(minutes=max(1, current.sync_interval_minutes))
        if current.next_sync_at > now + interval:
            # The interval was shortened: do not wait out the old, longer one.
            Connection.objects.filter(pk=connection_id).update(
                next_sync_at=first_sync_at(connection_id, current.sync_interval_minutes, now)
            )

    transaction.on_commit(apply)


@receiver(post_save, sender=SyncEvent, dispatch_uid="connector-problems-event")
def sync_event_saved(sender, instance: SyncEvent, created: bool, **kwargs) -> None:
    """Open, update or close the item's problem (connector/services/problems.py)."""
    if created:
        problems.note_event(instance)


@receiver(post_save, sender=SyncRun, dispatch_uid="connector-problems-run")
def sync_run_saved(sender, instance: SyncRun, **kwargs) -> None:
    problems.note_run(instance)
