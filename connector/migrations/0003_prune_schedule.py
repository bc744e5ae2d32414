"""Schedule the daily pruning of old sync logs (django-celery-beat)."""

from django.db import migrations

NAME = "connector-prune-sync-logs"


def add(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab = (
        CrontabSchedule.objects.filter(
            minute="17", hour="3", day_of_week="*", day_of_month="*", month_of_year="*"
        )
        .order_by("pk")
        .first()
    ) or CrontabSchedule.objects.create(
        minute="17", hour="3", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={"task": "connector.tasks.prune_sync_logs", "crontab": crontab},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0002_sync_engine"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add, remove)]
