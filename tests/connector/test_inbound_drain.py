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
from connector.services.inbound_wakeup import marker_raised
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


def second_while_the_first_is_processed(world, live_server, slow_seconds, within) -> None:
    """Deliver event 1 (Brightpearl slow to answer its read), then event 2 once a drain is
    processing event 1 — so after that drain lowered the marker."""
    world.bp.control.add_fault(
        r"goods-note/goods-in", "delay", method="GET", seconds=slow_seconds, times=1
    )
    assert deliver(live_server, world, [1]) == [202]
    first = WebhookEvent.objects.get(connection=world.connection)
    wait_until(
        lambda: WebhookEvent.objects.filter(
            pk=first.pk, status=WebhookEvent.Status.PROCESSING
        ).exists(),
        timeout=within,
        interval=0.02,
    )
    assert deliver(live_server, world, [2]) == [202]


def test_an_event_stored_while_the_drain_runs_is_processed(
    world, live_server, celery_worker, settings
):
    """The drain has lowered the marker and is busy with the first event (a slow Brightpearl)
    when the second arrives: that delivery queues the next drain. (With no memory of the
    marker in the web process: the next test is about that memory.)"""
    settings.INBOUND_WAKEUP_MEMO_SECONDS = 0
    worker = celery_worker(INBOUND_WAKEUP_MEMO_SECONDS=0)
    second_while_the_first_is_processed(world, live_server, slow_seconds=2, within=60)
    all_settled(world, 2)
    assert drains_received(worker) == 2


def test_a_delivery_trusting_its_memory_of_the_marker_is_taken_by_the_running_drain(
    world, live_server, celery_worker, settings
):
    """The web process saw the marker raised a moment ago and does not ask Redis again. The
    drain has already lowered it and is busy with the first event when the second arrives:
    nothing raises the marker again and no drain is queued, yet the running drain takes the
    second event, because its last read waits for that memory to lapse."""
    settings.INBOUND_WAKEUP_MEMO_SECONDS = 6
    worker = celery_worker(INBOUND_WAKEUP_MEMO_SECONDS=6)
    # Within 4 s: well inside the web process's 6 s memory of the marker.
    second_while_the_first_is_processed(world, live_server, slow_seconds=1, within=4)
    # Lowered by the drain, not raised again: the delivery trusted its memory.
    assert not marker_raised(world.connection)
    all_settled(world, 2)
    assert drains_received(worker) == 1
