"""Keep each connection's beat schedule in step with the connection, after commit."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Connection
from .schedules import remove_schedule, sync_schedule


@receiver(post_save, sender=Connection)
def connection_saved(sender, instance: Connection, **kwargs) -> None:
    connection_id = instance.pk

    def apply() -> None:
        current = Connection.objects.filter(pk=connection_id).first()
        if current is not None:
            sync_schedule(current)

    transaction.on_commit(apply)


@receiver(post_delete, sender=Connection)
def connection_deleted(sender, instance: Connection, **kwargs) -> None:
    connection_id = instance.pk
    transaction.on_commit(lambda: remove_schedule(connection_id))
