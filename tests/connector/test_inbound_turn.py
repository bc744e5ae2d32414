"""Issue #12: one pending sync per connection even when the dispatcher replaced a task that was
only waiting in a long queue, and a backlog never holds the inbound queue: a sync there has a
turn, and the rest goes on in a follow-up on the bulk queue. Real PostgreSQL, Redis as the
broker, the Brightpearl and Loop sandboxes over HTTP, a real Celery worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from connector import metrics
from connector.models import BindingState, Connection, SalesCredit, SyncRun
from connector.queues import BULK, INBOUND, queue_name
from connector.services.pending import raise_pending, stale_pending
from connector.tasks import _enqueue_pending_sync, sync_connection
from tests.support.processes import wait_until


def approved_return(world, n: int):
    sku = f"CUP{n}-{world.bp.code}"
    sale = world.sale([(sku, 1, "12.00", "2.00")])
    world.loop_return(sale, [{"sku": sku}])
    return sale


def superseded_count() -> int:
    key = (SyncRun.Trigger.INTAKE, metrics.SUPERSEDED)
    return metrics.read("sync_runs", [key]).get(key, 0)


def test_a_pending_task_the_dispatcher_replaced_leaves_the_work_to_its_replacement(
    world, settings, postgres
):
    """A pending task waited in a long queue past SYNC_PENDING_STALE_SECONDS, so the dispatcher
    renewed the marker and queued a replacement. When the old task starts after all, it
    does nothing (counted "superseded", no row): the replacement credits the return, once."""
    sale = approved_return(world, 1)
    pk = world.connection.pk
    token = raise_pending(pk)
    later = token + timedelta(seconds=settings.SYNC_PENDING_STALE_SECONDS + 1)
    [(taken, renewed)] = stale_pending(now=later)
    assert taken == pk and renewed == later
    before = superseded_count()

    old = {"trigger": SyncRun.Trigger.INTAKE, "pending": True, "pending_token": token.isoformat()}
    assert sync_connection.apply((pk,), old).get() is None
    assert SyncRun.objects.count() == 0 and world.credits() == []
    assert Connection.objects.get(pk=pk).sync_queued_at == renewed  # still the replacement's
    assert superseded_count() == before + 1

    new = {**old, "pending_token": renewed.isoformat()}
    run = SyncRun.objects.get(pk=sync_connection.apply((pk,), new).get())
    assert run.status == SyncRun.Status.SUCCEEDED
    assert [c["parentOrderId"] for c in world.credits()] == [sale.order_id]
    assert Connection.objects.get(pk=pk).sync_queued_at is None


def test_a_pending_task_whose_marker_nobody_holds_still_runs(world, postgres):
    """A task with a token whose marker was cleared (its queueing looked refused, so the marker
    was put down, yet the message went out) is the only one left: it runs."""
    sale = approved_return(world, 1)
    pk = world.connection.pk
    token = raise_pending(pk)
    Connection.objects.filter(pk=pk).update(sync_queued_at=None)
    kwargs = {
        "trigger": SyncRun.Trigger.INTAKE,
        "pending": True,
        "pending_token": token.isoformat(),
    }
    run = SyncRun.objects.get(pk=sync_connection.apply((pk,), kwargs).get())
    assert run.status == SyncRun.Status.SUCCEEDED
    assert [c["parentOrderId"] for c in world.credits()] == [sale.order_id]


@pytest.mark.slow
def test_a_backlog_synced_from_the_inbound_queue_hands_the_rest_to_the_bulk_queue(
    world, settings, celery_worker, redis_url
):
    """A webhook-triggered sync (inbound queue) of 12 new returns, Brightpearl answering in
    0.15 s and a 1 s turn: the run stops before a request once its turn is over, says so, and
    the rest goes to the bulk queue, where a worker credits every return exactly once. An
    intake POST's sync already waiting on the inbound queue leaves the work to that follow-up:
    the backlog does not go on in the inbound queue."""
    settings.INBOUND_SYNC_TURN_SECONDS = 1
    sales = [approved_return(world, n) for n in range(12)]
    world.bp.control.set_latency(0.15)
    broker = redis.Redis.from_url(redis_url)  # celery_worker gave this test its own queues
    pk = world.connection.pk
    _enqueue_pending_sync(pk, SyncRun.Trigger.INTAKE, raise_pending(pk))  # a POST's, waiting
    assert broker.llen(queue_name(INBOUND)) == 1
    before = superseded_count()

    run_pk = sync_connection.apply(
        (world.connection.pk,), {"trigger": SyncRun.Trigger.WEBHOOK}
    ).get()
    run = SyncRun.objects.get(pk=run_pk)
    assert run.status == SyncRun.Status.PARTIAL
    assert run.message.startswith("Handed on during ")
    assert "bulk queue" in run.message
    made = SalesCredit.objects.filter(
        connection=world.connection, state=BindingState.CREATED
    ).count()
    assert made < 12
    assert not SalesCredit.objects.filter(state=BindingState.ATTEMPTING).exists()  # none left
    assert broker.llen(queue_name(BULK)) == 1 and broker.llen(queue_name(INBOUND)) == 1

    world.bp.control.set_latency(0)
    celery_worker()
    wait_until(
        lambda: (
            SalesCredit.objects.filter(
                connection=world.connection, state=BindingState.CREATED
            ).count()
            == 12
        ),
        timeout=120,
        interval=0.5,
    )
    parents = [c["parentOrderId"] for c in world.credits()]
    assert sorted(parents) == sorted(s.order_id for s in sales)  # each once
    wait_until(lambda: not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists())
    follow_ups = SyncRun.objects.filter(connection=world.connection).exclude(pk=run_pk)
    assert follow_ups.exists()
    # Every follow-up is the bulk queue's; the POST's task did nothing and stored no row.
    assert set(follow_ups.values_list("trigger", flat=True)) == {SyncRun.Trigger.WEBHOOK}
    wait_until(lambda: superseded_count() == before + 1, timeout=30)
