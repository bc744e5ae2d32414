"""Issue #12: a backlog never holds the inbound queue. A sync there (an intake POST's) has a
turn: once it is over, no new unit of work begins, and the rest goes on in a follow-up on the
bulk queue. Real PostgreSQL, Redis as the broker, the Brightpearl and Loop sandboxes over HTTP,
a real Celery worker."""

from __future__ import annotations

import pytest
import redis

from connector.models import BindingState, SalesCredit, SyncRun
from connector.queues import BULK, INBOUND, queue_name
from connector.services.pending import raise_pending
from connector.tasks import _enqueue_pending_sync, sync_connection
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow


def approved_return(world, n: int):
    sku = f"CUP{n}-{world.bp.code}"
    sale = world.sale([(sku, 1, "12.00", "2.00")])
    world.loop_return(sale, [{"sku": sku}])
    return sale


def credited(world) -> int:
    return SalesCredit.objects.filter(
        connection=world.connection, state=BindingState.CREATED
    ).count()


def test_a_backlog_synced_from_the_inbound_queue_hands_the_rest_to_the_bulk_queue(
    world, settings, celery_worker, redis_url
):
    """An intake-triggered sync (inbound queue) of 12 new returns, Brightpearl answering in
    0.15 s and a 1 s turn: the run begins no credit once its turn is over, says so, leaves
    nothing half done, and queues the rest on the bulk queue — not on the inbound queue, not
    sleeping in its slot. A worker then credits every return exactly once."""
    settings.INBOUND_SYNC_TURN_SECONDS = 1
    sales = [approved_return(world, n) for n in range(12)]
    world.bp.control.set_latency(0.15)
    broker = redis.Redis.from_url(redis_url)  # celery_worker gave this test its own queues

    trigger = {"trigger": SyncRun.Trigger.INTAKE}
    run = SyncRun.objects.get(pk=sync_connection.apply((world.connection.pk,), trigger).get())
    assert run.status == SyncRun.Status.PARTIAL
    assert run.message.startswith("Handed on during credits: its 1 s turn is over")
    assert "bulk queue" in run.message
    assert 0 < credited(world) < 12
    assert not SalesCredit.objects.exclude(attempt_started_at=None).exists()  # no write lease
    assert broker.llen(queue_name(BULK)) == 1 and broker.llen(queue_name(INBOUND)) == 0

    world.bp.control.set_latency(0)
    celery_worker()
    wait_until(lambda: credited(world) == 12, timeout=120, interval=0.5)
    parents = [c["parentOrderId"] for c in world.credits()]
    assert sorted(parents) == sorted(s.order_id for s in sales)  # each once
    wait_until(lambda: not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists())
    later = SyncRun.objects.filter(connection=world.connection).exclude(pk=run.pk)
    assert [r.status for r in later] == [SyncRun.Status.SUCCEEDED]  # the bulk queue's: no turn


def test_new_returns_posted_while_a_backlog_is_handed_on_are_credited_once(
    world, settings, celery_worker, redis_url
):
    """A POST's sync waits on the inbound queue when the backlog's turn ends: both it and the
    bulk follow-up run, one at a time (the run lease), and every return is credited once."""
    settings.INBOUND_SYNC_TURN_SECONDS = 1
    sales = [approved_return(world, n) for n in range(12)]
    world.bp.control.set_latency(0.15)
    broker = redis.Redis.from_url(redis_url)
    pk = world.connection.pk
    assert raise_pending(pk)
    _enqueue_pending_sync(pk, SyncRun.Trigger.INTAKE)  # a POST's, waiting on the inbound queue

    sync_connection.apply((pk,), {"trigger": SyncRun.Trigger.INTAKE}).get()
    assert broker.llen(queue_name(BULK)) == 1 and broker.llen(queue_name(INBOUND)) == 1
    sales.append(approved_return(world, 99))  # one more arrives meanwhile

    celery_worker(INBOUND_SYNC_TURN_SECONDS=1)
    wait_until(lambda: credited(world) == 13, timeout=120, interval=0.5)
    world.bp.control.set_latency(0)
    wait_until(lambda: not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists())
    parents = [c["parentOrderId"] for c in world.credits()]
    assert sorted(parents) == sorted(s.order_id for s in sales)  # each once
    assert not SalesCredit.objects.exclude(state=BindingState.CREATED).exists()
