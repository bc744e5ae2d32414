"""Issue #12: at most one pending sync per connection, however many intake POSTs arrive — and
no lost wakeup. Real HTTP (a live server), a real Celery worker on Redis, real PostgreSQL."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from connector.models import BindingState, Connection, SalesCredit
from connector.queues import INBOUND, queue_name
from returns.models import Rma
from tests.support.processes import wait_until
from tests.support.world import intake_body, make_intake_world

pytestmark = pytest.mark.slow


@pytest.fixture
def shop(sandbox, loop_server, settings, postgres):
    world, token = make_intake_world(sandbox, loop_server, settings, "Ada Lovelace")
    world.token = token
    return world


def post_returns(live_server, shop, names: list[str], threads: int = 8) -> list[int]:
    """POST one approved return per name, `threads` at a time; the HTTP statuses."""
    sales = {name: shop.sale([(f"MUG-{shop.bp.code}", 1, "10.00", "2.00")]) for name in names}
    session = requests.Session()
    url = f"{live_server.url}/api/intake/rmas/"
    headers = {"Authorization": f"Token {shop.token}"}

    def post(name: str) -> int:
        body = intake_body(shop, sales[name], name)
        return session.post(url, json=body, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, names))


def sync_tasks_received(worker) -> int:
    text = worker.log.read_text(errors="replace")
    return len(re.findall(r"Task connector\.tasks\.sync_connection\[[^\]]+\] received", text))


def credited_once(shop, count: int) -> None:
    """Every return has its credit, and Brightpearl holds exactly one per return."""
    wait_until(
        lambda: (
            SalesCredit.objects.filter(
                connection=shop.connection, state=BindingState.CREATED
            ).count()
            == count
        ),
        timeout=180,
        interval=0.5,
    )
    parents = [c["parentOrderId"] for c in shop.credits()]
    assert len(parents) == len(set(parents)) == count
    assert set(Rma.objects.filter(connection=shop.connection).values_list("status", flat=True)) == {
        "credited"
    }


def test_a_burst_of_posts_queues_one_sync_and_every_return_is_credited_once(
    shop, live_server, celery_worker, redis_url
):
    # No worker yet: 40 concurrent POSTs leave exactly one sync task waiting in the broker.
    statuses = post_returns(live_server, shop, [f"A-{n}" for n in range(40)])
    assert statuses == [201] * 40
    broker = redis.Redis.from_url(redis_url)
    assert broker.llen(queue_name(INBOUND)) == 1
    assert Connection.objects.get(pk=shop.connection.pk).sync_queued_at is not None

    worker = celery_worker()
    credited_once(shop, 40)
    assert sync_tasks_received(worker) == 1  # that one task credited all 40

    # With the worker busy (a slow Brightpearl), another burst of 40: a task starts, clears
    # the marker, and the POSTs arriving during its run queue one more — not one each.
    shop.bp.control.set_latency(0.05)
    try:
        assert post_returns(live_server, shop, [f"B-{n}" for n in range(40)]) == [201] * 40
        credited_once(shop, 80)
    finally:
        shop.bp.control.set_latency(0)
    tasks = sync_tasks_received(worker) - 1
    print(f"second burst: 40 POSTs while syncing -> {tasks} sync task(s)")
    assert 1 <= tasks < 40


def test_a_return_posted_while_the_run_ends_is_credited(shop, live_server, celery_worker):
    """The run has read its work (its credit POST is in flight) when the next return arrives:
    the pending marker was cleared when the run started, so that POST queues the next task."""
    worker = celery_worker()
    shop.bp.control.add_fault(
        r"^/order-service/sales-credit/?$", "delay", method="POST", seconds=2, times=1
    )
    assert post_returns(live_server, shop, ["EARLY"]) == [201]
    wait_until(
        lambda: SalesCredit.objects.filter(
            connection=shop.connection, state=BindingState.ATTEMPTING
        ).exists(),
        timeout=60,
        interval=0.02,
    )
    assert post_returns(live_server, shop, ["LATE"]) == [201]
    credited_once(shop, 2)
    assert sync_tasks_received(worker) == 2
    connection = Connection.objects.get(pk=shop.connection.pk)
    assert connection.sync_queued_at is None and not connection.sync_requested
