"""Keep a connection's next scheduled sync in step with its interval, after commit."""

from datetime import timedelta

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from .models import Connection
from .schedules import first_sync_at


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
