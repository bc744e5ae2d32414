"""One dispatcher for scheduled syncs (issue #12): `Connection.next_sync_at`, the beat entry
`connector-dispatch-syncs` (every minute), and the per-connection beat entries removed. Each
connection's interval is kept (it lives on the connection); the dispatcher spreads syncs over it."""

from django.db import migrations, models

DISPATCHER = "connector-dispatch-syncs"


def forwards(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(
        name__startswith="connector-sync-", task="connector.tasks.sync_connection"
    ).delete()
    every_minute = (
        IntervalSchedule.objects.filter(every=60, period="seconds").order_by("pk").first()
        or IntervalSchedule.objects.create(every=60, period="seconds")
    )
    PeriodicTask.objects.get_or_create(
        name=DISPATCHER,
        defaults={"task": "connector.tasks.dispatch_due_syncs", "interval": every_minute},
    )


def backwards(apps, schema_editor):
    """Back to one beat entry per enabled connection, on its interval."""
    import json

    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    Connection = apps.get_model("connector", "Connection")
    PeriodicTask.objects.filter(name=DISPATCHER).delete()
    for connection in Connection.objects.all():
        minutes = connection.sync_interval_minutes
        interval = (
            IntervalSchedule.objects.filter(every=minutes, period="minutes").order_by("pk").first()
            or IntervalSchedule.objects.create(every=minutes, period="minutes")
        )
        PeriodicTask.objects.get_or_create(
            name=f"connector-sync-{connection.pk}",
            defaults={
                "task": "connector.tasks.sync_connection",
                "interval": interval,
                "kwargs": json.dumps({"connection_id": connection.pk}),
                "enabled": connection.enabled,
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0009_staff_roles"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="connection",
            name="next_sync_at",
            field=models.DateTimeField(
                blank=True, db_index=True, null=True, verbose_name="next scheduled sync"
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
