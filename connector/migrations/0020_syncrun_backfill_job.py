"""A backfill's sync-log row names its job, so a sync that takes the connection's run lease
leaves it alone (a backfill holds no lease); it is judged by its own heartbeat instead. Rows
written before this have no job: a sync closes them as before."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0019_quiet_poll_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="backfill_job",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="runs",
                to="connector.backfilljob",
            ),
        ),
    ]
