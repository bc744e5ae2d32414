"""Issue #12: a worker slot never sleeps waiting for an account's rate budget. A merchant whose
budget is spent gives its slot back and comes back later; another merchant's sync runs now."""

import time

import pytest

from brightpearl import BudgetSpent, MemoryThrottleStore, Throttle
from connector.models import SyncRun
from connector.tasks import sync_connection
from returns.platforms.loop.sandbox import LoopSandbox
from tests.support.processes import wait_until
from tests.support.world import make_world


def test_a_spent_budget_raises_instead_of_sleeping():
    naps = []
    store = MemoryThrottleStore()
    throttle = Throttle(store, "acct", budget=1, max_block_seconds=2.0, sleep=naps.append)
    throttle.before_request()  # the one request of the window
    with pytest.raises(BudgetSpent) as spent:
        throttle.before_request()
    assert naps == []
    assert 55 < spent.value.retry_after <= 61  # the window's end, not a guess


def test_a_short_wait_is_still_slept_within_the_bound():
    store = MemoryThrottleStore()
    store.pause("acct", 300)
    throttle = Throttle(store, "acct", max_block_seconds=2.0)
    started = time.monotonic()
    throttle.before_request()  # no BudgetSpent: 0.3 s is within the bound
    assert time.monotonic() - started >= 0.25
    assert throttle.waited_seconds > 0


def approved_return(world, sku):
    sale = world.sale([(sku, 1, "30.00", "6.00")])
    world.loop_return(sale, [{"sku": sku}])
    return sale


@pytest.mark.slow
def test_a_throttled_merchant_does_not_hold_the_only_slot(
    world, celery_worker, sandbox, settings, redis_url
):
    from brightpearl import RedisThrottleStore

    other_loop = LoopSandbox(port=0).start()
    try:
        other = make_world(
            sandbox,
            other_loop,
            settings,
            "Grace Hopper",
            name="Other shop {code}",
            platform="loop",
            platform_api_key=other_loop.api_key,
            platform_api_url=other_loop.api_url,
            refund_method_code="1200",
            customer_ref_prefix="RMA-",
        )
        approved_return(world, f"KETTLE-{world.bp.code}")
        approved_return(other, f"TOASTER-{other.bp.code}")
        celery_worker(BRIGHTPEARL_MAX_BLOCK_SECONDS=2)  # one slot for both merchants
        # The first merchant's account has no budget for the next 12 s (as after a 503); from
        # now, not from before the worker's start, which takes longer on a loaded machine.
        host = sandbox.api_url_template.split("://", 1)[1].split("/", 1)[0]
        RedisThrottleStore(redis_url).pause(f"{host}:{world.bp.code}", 12_000)
        paused_at = time.monotonic()
        queued_at = time.monotonic()
        sync_connection.delay(world.connection.pk, trigger=SyncRun.Trigger.ADMIN)
        sync_connection.delay(other.connection.pk, trigger=SyncRun.Trigger.ADMIN)

        # The unthrottled merchant is credited at once, not after the other's 12 s pause.
        wait_until(lambda: other.credits(), timeout=30, interval=0.1)
        other_credited_after = time.monotonic() - queued_at
        assert not world.credits()
        assert other_credited_after < 10
        paused = SyncRun.objects.get(connection=world.connection, status=SyncRun.Status.PARTIAL)
        assert "budget" in paused.message

        # The throttled merchant's sync came back by itself once its budget was there.
        wait_until(lambda: world.credits(), timeout=40, interval=0.2)
        assert time.monotonic() - paused_at >= 11.9
        assert len(world.credits()) == 1 and len(other.credits()) == 1
    finally:
        other_loop.stop()
