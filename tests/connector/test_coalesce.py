"""Issue #12: at most one pending sync per connection, however many intake POSTs (or staff
clicks on "Run sync now") arrive — and no lost wakeup. Real HTTP (a live server), a real Celery
worker on Redis, real PostgreSQL."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from django.urls import reverse
from django.utils import timezone

from connector.models import BindingState, Connection, SalesCredit, SyncRun
from connector.queues import INBOUND, SYNC, queue_name
from returns.models import Rma
from tests.connector.admin_roles import client_for, staff_user
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


def click_sync_now(client, connections) -> list[str]:
    """Staff select these connections and run "Run sync now": the messages they read."""
    response = client.post(
        reverse("admin:connector_connection_changelist"),
        {"action": "sync_selected_now", "_selected_action": [c.pk for c in connections]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def test_run_sync_now_clicked_again_and_again_queues_one_sync_per_connection(
    world, shop, live_server, celery_worker, redis_url
):
    """Five clicks on two connections, one of which already had its sync pending (a return
    just posted through the intake API): one task per connection waits in the broker, staff
    are told which sync was queued and which already was, and the worker runs one sync each,
    logged with the trigger that queued it."""
    broker = redis.Redis.from_url(redis_url)
    sku = f"KETTLE-{world.bp.code}"
    loop_sale = world.sale([(sku, 1, "30.00", "6.00")])
    world.loop_return(loop_sale, [{"sku": sku}])
    assert post_returns(live_server, shop, ["POSTED"]) == [201]  # its sync is now pending
    loop_shop, intake_shop = sorted([world.connection, shop.connection], key=lambda c: c.pk)
    already = "A sync was already queued for {}: not queued again"
    staff = client_for(staff_user("superuser"))

    queued, waiting = click_sync_now(staff, [loop_shop, intake_shop])
    assert queued == f"Sync queued for {world.connection.name}."
    assert waiting.startswith(already.format(shop.connection.name))
    for _ in range(4):
        [message] = click_sync_now(staff, [loop_shop, intake_shop])
        assert message.startswith(already.format(f"{loop_shop.name}, {intake_shop.name}"))
    # No worker yet: the staff sync of the Loop shop, and the intake shop's (its POST's).
    assert broker.llen(queue_name(SYNC)) == 1
    assert broker.llen(queue_name(INBOUND)) == 1

    worker = celery_worker()
    credited_once(shop, 1)
    wait_until(
        lambda: [c["parentOrderId"] for c in world.credits()] == [loop_sale.order_id],
        timeout=120,
    )
    wait_until(
        lambda: (
            SyncRun.objects.filter(connection=world.connection).exists()
            and not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists()
        ),
        timeout=60,
    )
    assert list(
        SyncRun.objects.filter(connection=world.connection).values_list("trigger", "status")
    ) == [(SyncRun.Trigger.ADMIN, SyncRun.Status.SUCCEEDED)]
    assert list(
        SyncRun.objects.filter(connection=shop.connection).values_list("trigger", "status")
    ) == [(SyncRun.Trigger.INTAKE, SyncRun.Status.SUCCEEDED)]
    assert sync_tasks_received(worker) == 2
    assert not Connection.objects.filter(sync_queued_at__isnull=False).exists()


def test_a_throttled_merchants_posts_while_its_sync_waits_for_budget_queue_nothing_more(
    shop, live_server, celery_worker, sandbox, redis_url
):
    """The account has no budget for 20 s: the first POST's sync stops at once ("Paused"),
    frees its slot and comes back as the connection's one pending task. Twenty more POSTs
    while it waits queue nothing: the one task credits all 21 once the budget is back, and
    staff read one run that paused once. (Before, every POST after the pause queued a task of
    its own, and each stored a paused run.)"""
    from brightpearl import RedisThrottleStore

    worker = celery_worker(BRIGHTPEARL_MAX_BLOCK_SECONDS=2)
    host = sandbox.api_url_template.split("://", 1)[1].split("/", 1)[0]
    RedisThrottleStore(redis_url).pause(f"{host}:{shop.bp.code}", 20_000)
    paused_at = time.monotonic()
    assert post_returns(live_server, shop, ["FIRST"]) == [201]
    wait_until(
        lambda: SyncRun.objects.filter(
            connection=shop.connection, status=SyncRun.Status.PARTIAL
        ).exists(),
        timeout=60,
        interval=0.1,
    )
    # The marker is up again, dated when the paused run comes back (not taken for lost).
    marker = Connection.objects.get(pk=shop.connection.pk).sync_queued_at
    assert marker is not None and marker > timezone.now()

    assert post_returns(live_server, shop, [f"WAIT-{n}" for n in range(20)]) == [201] * 20
    assert time.monotonic() - paused_at < 19, "the POSTs should land while the sync waits"
    assert not shop.credits()
    credited_once(shop, 21)
    runs = SyncRun.objects.filter(connection=shop.connection).order_by("pk")
    wait_until(lambda: not runs.filter(status=SyncRun.Status.RUNNING).exists(), timeout=60)
    assert sync_tasks_received(worker) == 2  # the first, and the same sync coming back
    [run] = runs
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.message == "It went on after 1 pause(s) for the account's request budget."
    assert run.counts["budget_pauses"] == 1 and run.counts["credit_succeeded"] == 21
    assert Connection.objects.get(pk=shop.connection.pk).sync_queued_at is None
