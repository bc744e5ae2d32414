"""Inbound events own their lifecycle: a `processing` status with a lease (`next_attempt_at`),
duplicates that point at their first delivery, a unique dedupe key per (connection, source),
and the housekeeping beat task that re-dispatches events whose processing did not finish."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


HOUSEKEEPING = "connector-redispatch-inbound-events"
FINISHED = ("processed", "ignored", "failed", "rejected", "duplicate")


def forwards(apps, schema_editor):
    WebhookEvent = apps.get_model("connector", "WebhookEvent")
    WebhookEvent.objects.filter(status__in=FINISHED).update(next_attempt_at=None)
    # Older rows may share a dedupe key (the check-then-insert raced, and duplicates kept the
    # key): the first delivery keeps it, the others become its duplicates.
    seen: dict[tuple, int] = {}
    rows = (
        WebhookEvent.objects.exclude(dedupe_key="")
        .order_by("pk")
        .values_list("pk", "connection_id", "source", "dedupe_key")
    )
    for pk, connection_id, source, key in rows.iterator():
        first = seen.setdefault((connection_id, source, key), pk)
        if first != pk:
            WebhookEvent.objects.filter(pk=pk).update(dedupe_key="", duplicate_of_id=first)
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute = (
        IntervalSchedule.objects.filter(every=60, period="seconds").order_by("pk").first()
        or IntervalSchedule.objects.create(every=60, period="seconds")
    )
    PeriodicTask.objects.get_or_create(
        name=HOUSEKEEPING,
        defaults={"task": "connector.tasks.redispatch_inbound_events", "interval": every_minute},
    )


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name=HOUSEKEEPING
    ).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("connector", "0007_exactly_once_by_account"),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.AddField(
            model_name='webhookevent',
            name='duplicate_of',
            field=models.ForeignKey(blank=True, help_text='The first delivery of the same event (which holds the dedupe key).', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='redeliveries', to='connector.webhookevent'),
        ),
        migrations.AddField(
            model_name='webhookevent',
            name='next_attempt_at',
            field=models.DateTimeField(blank=True, db_index=True, default=django.utils.timezone.now, help_text='Received: when processing is due. Processing: when the claim lapses.', null=True),
        ),
        migrations.AddField(
            model_name='webhookevent',
            name='claimed_by',
            field=models.CharField(blank=True, help_text='Who holds the processing claim (the Celery task ID, which a task redelivered after its worker died keeps, so it resumes at once).', max_length=100),
        ),
        migrations.AlterField(
            model_name='webhookevent',
            name='status',
            field=models.CharField(choices=[('received', 'Received'), ('processing', 'Processing'), ('processed', 'Processed'), ('failed', 'Failed'), ('ignored', 'Ignored'), ('rejected', 'Rejected (malformed)'), ('duplicate', 'Duplicate')], db_index=True, default='received', max_length=10),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.AddConstraint(
            model_name='webhookevent',
            constraint=models.UniqueConstraint(condition=models.Q(('dedupe_key', ''), _negated=True), fields=('connection', 'source', 'dedupe_key'), name='webhook_event_unique_dedupe_key'),
        ),
    ]
