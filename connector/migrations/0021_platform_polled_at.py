"""When a scheduled sync last listed the platform's changes: the safety-net poll of a platform
whose webhooks are arriving runs at most once per its interval (issue #11,
connector/services/poll_cadence.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0020_syncrun_backfill_job"),
    ]

    operations = [
        migrations.AddField(
            model_name="connection",
            name="platform_polled_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When a scheduled sync last listed the platform's changes (the "
                "safety-net poll, hourly while the platform's webhooks arrive).",
                null=True,
                verbose_name="platform last listed",
            ),
        ),
    ]
