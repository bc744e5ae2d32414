"""Scheduled syncs go through one dispatcher (issue #12): due connections are queued spread over
the interval, each on its own interval, never all in the same second, never twice per slot."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from connector.models import Connection
from connector.schedules import DISPATCH_EVERY_SECONDS, DISPATCHER_NAME, dispatch_due
from tests.support.migrations import run_data_migration

from .factories import ConnectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_dispatch(django_capture_on_commit_callbacks):
    """One beat tick at `now`: the (connection, countdown) pairs queued after commit."""

    def tick(now):
        queued = []
        with django_capture_on_commit_callbacks(execute=True):
            dispatch_due(now, enqueue=lambda pk, countdown: queued.append((pk, countdown)))
        return queued

    return tick


def test_one_beat_entry_dispatches_every_connection():
    run_data_migration("0010_sync_dispatcher")  # makes the entry (twice: still one)
    assert (
        PeriodicTask.objects.get(name=DISPATCHER_NAME).task == "connector.tasks.dispatch_due_syncs"
    )
    ConnectionFactory.create_batch(3)
    assert not PeriodicTask.objects.filter(name__startswith="connector-sync-").exists()


def test_a_thousand_connections_are_spread_over_their_interval(run_dispatch):
    now = timezone.now()
    Connection.objects.bulk_create(
        [
            Connection(name=f"Shop {n}", brightpearl_account=f"acct{n}", sync_interval_minutes=15)
            for n in range(1000)
        ]
    )
    assert len(run_dispatch(now)) < 10  # phases first, not a burst of 1,000
    per_minute, synced = Counter(), set()
    for minute in range(16):  # one interval (15 min) and the tick that closes it
        queued = run_dispatch(now + timedelta(minutes=minute, seconds=1))
        per_minute[minute] = len(queued)
        synced.update(pk for pk, _ in queued)
    assert len(synced) == 1000  # every connection within one interval
    assert max(per_minute.values()) <= 1000 / 15 * 1.5  # ~67 a minute, not 1,000 at once


def test_each_queued_sync_is_spread_over_the_dispatch_period(run_dispatch):
    now = timezone.now()
    ConnectionFactory.create_batch(50, sync_interval_minutes=1)
    run_dispatch(now)  # phases
    queued = run_dispatch(now + timedelta(minutes=1, seconds=1))
    countdowns = [c for _, c in queued]
    assert len(queued) == 50
    assert all(0 <= c <= DISPATCH_EVERY_SECONDS for c in countdowns)
    assert max(countdowns) - min(countdowns) > DISPATCH_EVERY_SECONDS / 4


def test_a_connection_is_queued_once_per_interval_and_follows_its_own_interval(run_dispatch):
    now = timezone.now()
    fast = ConnectionFactory(sync_interval_minutes=5)
    slow = ConnectionFactory(sync_interval_minutes=60)
    run_dispatch(now)
    seen = Counter()
    for minute in range(0, 120):
        for pk, _ in run_dispatch(now + timedelta(minutes=minute, seconds=1)):
            seen[pk] += 1
        run_dispatch(now + timedelta(minutes=minute, seconds=2))  # a second tick: no repeat
    assert 23 <= seen[fast.pk] <= 25
    assert 1 <= seen[slow.pk] <= 2


def test_disabled_connections_are_not_queued(run_dispatch):
    now = timezone.now()
    connection = ConnectionFactory(sync_interval_minutes=1, enabled=False)
    run_dispatch(now)
    assert all(pk != connection.pk for pk, _ in run_dispatch(now + timedelta(minutes=2)))


def test_shortening_the_interval_takes_effect_without_waiting_out_the_old_one(
    django_capture_on_commit_callbacks,
):
    now = timezone.now()
    connection = ConnectionFactory(sync_interval_minutes=24 * 60)
    Connection.objects.filter(pk=connection.pk).update(next_sync_at=now + timedelta(hours=20))
    connection.refresh_from_db()
    connection.sync_interval_minutes = 5
    with django_capture_on_commit_callbacks(execute=True):
        connection.save()
    connection.refresh_from_db()
    assert connection.next_sync_at <= timezone.now() + timedelta(minutes=5)


@pytest.mark.django_db(transaction=True)
def test_the_dispatcher_task_queues_real_syncs_on_the_sync_queue(redis_url):
    import uuid

    import redis

    from config.celery_app import app
    from connector.queues import SYNC, all_queues, queue_name
    from connector.tasks import dispatch_due_syncs

    base = f"dispatch-{uuid.uuid4().hex[:8]}"
    old = app.conf.task_default_queue
    app.conf.task_default_queue = base
    client = redis.Redis.from_url(redis_url)
    try:
        connection = ConnectionFactory(sync_interval_minutes=1)
        Connection.objects.filter(pk=connection.pk).update(
            next_sync_at=timezone.now() - timedelta(seconds=1)
        )
        assert dispatch_due_syncs() == 1
        assert dispatch_due_syncs() == 0  # not twice for one slot
        assert client.llen(queue_name(SYNC, base)) == 1
    finally:
        app.conf.task_default_queue = old
        client.delete(*all_queues(base))
