"""Issue #11: a webhook delivery is one INSERT, not a task; one drain per connection processes
the stored events, and no wake-up is lost. Real HTTP (a live server), the Brightpearl sandbox,
a real Celery worker on Redis, real PostgreSQL."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from connector.models import WebhookEvent
from connector.queues import INBOUND, queue_name
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow

UNFINISHED = [WebhookEvent.Status.RECEIVED, WebhookEvent.Status.PROCESSING]


def goods_in(world, n: int) -> bytes:
    """A goods-in note event for a note that is not ours (the handler reads it, then ignores
    it): each `n` is a distinct event."""
    return json.dumps(
        {
            "accountCode": world.connection.brightpearl_account,
            "resourceType": "goods-in-note",
            "id": str(900000 + n),
            "lifecycleEvent": "created",
            "fullEvent": "goods-in-note.created",
            "raisedOn": f"2026-12-01T10:00:{n // 1000:02d}.{n % 1000:03d}Z",
        }
    ).encode()


def deliver(live_server, world, numbers, threads: int = 8) -> list[int]:
    url = (
        f"{live_server.url}/webhooks/brightpearl/{world.connection.pk}/"
        f"{world.connection.webhook_secret}/"
    )
    session = requests.Session()

    def post(n: int) -> int:
        body = goods_in(world, n)
        headers = {"Content-Type": "application/json"}
        return session.post(url, data=body, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, numbers))


def drains_received(worker) -> int:
    text = worker.log.read_text(errors="replace")
    return len(re.findall(r"Task connector\.tasks\.drain_inbound_events\[[^\]]+\] received", text))


def all_settled(world, count: int) -> None:
    events = WebhookEvent.objects.filter(connection=world.connection)
    wait_until(
        lambda: events.count() == count and not events.filter(status__in=UNFINISHED).exists(),
        timeout=120,
        interval=0.5,
    )
    assert set(events.values_list("status", flat=True)) == {WebhookEvent.Status.IGNORED}


def test_a_burst_of_deliveries_queues_one_drain_that_processes_them_all(
    world, live_server, celery_worker, redis_url
):
    # No worker yet: 30 concurrent deliveries are 30 stored events and one task in the broker.
    assert deliver(live_server, world, range(30)) == [202] * 30
    assert WebhookEvent.objects.filter(connection=world.connection).count() == 30
    broker = redis.Redis.from_url(redis_url)
    assert broker.llen(queue_name(INBOUND)) == 1

    worker = celery_worker()
    all_settled(world, 30)
    assert drains_received(worker) == 1  # that one drain processed all 30


def test_an_event_stored_while_the_drain_runs_is_processed(world, live_server, celery_worker):
    """The drain has lowered the marker and is busy with the first event (a slow Brightpearl)
    when the second arrives: that delivery queues the next drain."""
    worker = celery_worker()
    world.bp.control.add_fault(r"goods-note/goods-in", "delay", method="GET", seconds=2, times=1)
    assert deliver(live_server, world, [1]) == [202]
    first = WebhookEvent.objects.get(connection=world.connection)
    wait_until(
        lambda: WebhookEvent.objects.filter(
            pk=first.pk, status=WebhookEvent.Status.PROCESSING
        ).exists(),
        timeout=60,
        interval=0.02,
    )
    assert deliver(live_server, world, [2]) == [202]
    all_settled(world, 2)
    assert drains_received(worker) == 2
