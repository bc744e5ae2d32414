"""Issue #11, fair budget: a large sync does not starve webhook-driven work or staff actions.
Syncs spend from the bulk lane (all but BRIGHTPEARL_RESERVED_FOR_INBOUND requests of the
minute, paced); inbound events and admin views from the interactive lane (the whole budget)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from brightpearl import BudgetSpent, RedisThrottleStore
from brightpearl.throttle import BULK, Lane, lane_arguments
from connector.models import SyncRun, WebhookEvent
from connector.services import subscriptions
from connector.services.brightpearl import (
    _throttle_store,
    client_for,
    interactive_lane,
    never_sleep_for_budget,
)
from connector.tasks import sync_connection
from returns.models import Rma, RmaLine
from tests.support.processes import wait_until


def account_key(world) -> str:
    return client_for(world.connection).throttle.key


def spend_the_bulk_share(world, budget: int, reserve: int) -> None:
    """What a large sync leaves behind: every request of the minute the bulk lane may use."""
    client = client_for(world.connection)
    store, key = client.throttle.store, client.throttle.key
    lane = lane_arguments(Lane(BULK, reserve, burst=budget), budget, client.throttle.window_ms)
    while store.acquire(key, budget, client.throttle.window_ms, **lane) == 0:
        pass


@pytest.mark.django_db
def test_staff_check_goes_through_while_a_sync_has_spent_its_share(
    admin_client, world, settings, redis_url
):
    settings.BRIGHTPEARL_RESERVED_FOR_INBOUND = 20
    _throttle_store().reset(account_key(world))
    spend_the_bulk_share(world, 200, 20)
    # A sync's client now finds no budget for the rest of the minute …
    with never_sleep_for_budget(1.0), pytest.raises(BudgetSpent):
        client_for(world.connection).get_order_statuses()
    # … while the staff's Check connection runs at once on the reserve (a BudgetSpent here
    # would propagate: the view must not have waited either).
    with never_sleep_for_budget(1.0):
        check = reverse("admin:connector_connection_check", args=[world.connection.pk])
        admin_client.post(check)
    world.connection.refresh_from_db()
    assert world.connection.last_check_ok is True
    with interactive_lane(), never_sleep_for_budget(1.0):
        assert client_for(world.connection).get_order_statuses()


@pytest.mark.slow
def test_a_goods_in_webhook_is_processed_while_a_backlog_has_spent_the_minute(
    world, celery_worker, live_server, settings, redis_url
):
    """A backlog sync drains in a worker with the account's budget spent by it; Brightpearl's
    goods-in webhook arrives: the RMA is received in the same minute, the backlog not done."""
    budget, reserve, backlog = 40, 8, 80
    settings.PUBLIC_BASE_URL = live_server.url
    subscriptions.register(world.connection)
    sale = world.sale([(f"FAIR-{world.bp.code}", 1, "10.00", "2.00")])
    target_return = world.loop_return(sale, [{"sku": f"FAIR-{world.bp.code}", "quantity": 1}])
    world.sync()
    target = Rma.objects.get(connection=world.connection, external_id=str(target_return["id"]))
    for n in range(backlog):
        sku = f"BACKLOG{n}-{world.bp.code}"
        world.loop_return(world.sale([(sku, 1, "10.00", "2.00")]), [{"sku": sku}])
    credits_before = len(world.credits())

    # From here on the account allows `budget` requests a minute, as Brightpearl would.
    store = RedisThrottleStore(redis_url)
    key = account_key(world)
    store.reset(key)
    world.bp.control.set_throttle(budget=budget, window_seconds=60)
    lanes = {"BRIGHTPEARL_REQUESTS_PER_MINUTE": budget, "BRIGHTPEARL_RESERVED_FOR_INBOUND": reserve}
    celery_worker(**lanes)  # the backlog's sync
    hook_worker = celery_worker(**lanes)  # webhooks
    sync_connection.delay(world.connection.pk, trigger=SyncRun.Trigger.ADMIN)

    redis = store._redis
    slots = f"{store.prefix}{key}:slots"
    # The sync has spent (all but at most two of) the requests the bulk lane may use this
    # minute: when Brightpearl's "requests remaining" runs low the client paces the bulk lane's
    # last slot or two over the rest of the period, and the first slots may leave the window
    # before those are taken. Either way the minute is spent for the backlog.
    wait_until(lambda: redis.zcard(slots) >= budget - reserve - 2, timeout=60, interval=0.1)
    first_slot_ms = float(redis.zrange(slots, 0, 0, withscores=True)[0][1])

    world.bp.control.receive(target.sales_credit.credit_id)

    def received():
        lines = RmaLine.objects.filter(rma=target)
        return all(x.quantity_received == x.quantity for x in lines)

    try:
        wait_until(received, timeout=50)
    except AssertionError:
        print(hook_worker.output())  # what the webhook's worker was doing
        raise

    seconds, micros = redis.time()
    now_ms = seconds * 1000 + micros / 1000
    assert now_ms < first_slot_ms + 60_000  # the minute the sync spent had not turned over
    assert len(world.credits()) < credits_before + backlog  # the backlog is still draining
    event = WebhookEvent.objects.get(connection=world.connection, event="goods-in-note.created")
    wait_until(lambda: event.refresh_from_db() or event.status != "processing", timeout=10)
    assert event.status == WebhookEvent.Status.PROCESSED
    assert world.bp.control.stats().get("status:503", 0) == 0  # no request was throttled
