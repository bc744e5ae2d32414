"""Each enabled connection owns exactly one beat PeriodicTask that follows its settings."""

import json

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from connector.schedules import SYNC_TASK, interval_for, schedule_name

from .factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def task_for(connection) -> PeriodicTask:
    return PeriodicTask.objects.get(name=schedule_name(connection.pk))


def test_saving_a_connection_creates_its_schedule_after_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        connection = ConnectionFactory(sync_interval_minutes=10)
    task = task_for(connection)
    assert task.task == SYNC_TASK
    assert task.enabled is True
    assert json.loads(task.kwargs) == {"connection_id": connection.pk}
    assert (task.interval.every, task.interval.period) == (10, IntervalSchedule.MINUTES)
    assert PeriodicTask.objects.filter(name__startswith="connector-sync-").count() == 1


def test_schedule_is_not_created_before_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        connection = ConnectionFactory()
    assert not PeriodicTask.objects.filter(name=schedule_name(connection.pk)).exists()
    assert len(callbacks) == 1


def test_interval_change_updates_the_same_task(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        connection = ConnectionFactory(sync_interval_minutes=10)
    first = task_for(connection)
    with django_capture_on_commit_callbacks(execute=True):
        connection.sync_interval_minutes = 5
        connection.save()
    task = task_for(connection)
    assert task.pk == first.pk
    assert task.interval.every == 5
    assert PeriodicTask.objects.filter(name=schedule_name(connection.pk)).count() == 1


def test_disabling_disables_and_enabling_reenables(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        connection = ConnectionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        connection.enabled = False
        connection.save()
    assert task_for(connection).enabled is False
    with django_capture_on_commit_callbacks(execute=True):
        connection.enabled = True
        connection.save()
    assert task_for(connection).enabled is True


def test_deleting_removes_the_schedule(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        connection = ConnectionFactory()
    name = schedule_name(connection.pk)
    with django_capture_on_commit_callbacks(execute=True):
        connection.delete()
    assert not PeriodicTask.objects.filter(name=name).exists()


def test_saving_without_schedule_changes_does_not_touch_the_task(
    django_capture_on_commit_callbacks,
):
    """Every PeriodicTask save makes beat reload its whole schedule."""
    with django_capture_on_commit_callbacks(execute=True):
        connection = ConnectionFactory()
    before = task_for(connection).date_changed
    with django_capture_on_commit_callbacks(execute=True):
        connection.customer_ref_prefix = "RMA-"
        connection.save()
    assert task_for(connection).date_changed == before


def test_duplicate_interval_rows_do_not_break_scheduling(django_capture_on_commit_callbacks):
    """IntervalSchedule has no unique constraint; duplicates must not raise."""
    IntervalSchedule.objects.create(every=7, period=IntervalSchedule.MINUTES)
    IntervalSchedule.objects.create(every=7, period=IntervalSchedule.MINUTES)
    assert interval_for(7).every == 7
    with django_capture_on_commit_callbacks(execute=True):
        connection = ConnectionFactory(sync_interval_minutes=7)
    assert task_for(connection).interval.every == 7
