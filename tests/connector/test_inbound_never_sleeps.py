"""Issue #12 for inbound events: a webhook whose Brightpearl account has no budget left gives
its worker slot back instead of sleeping in it, and comes back when the budget is there — not
counted as a failed attempt (an event paused for budget is never given up on for it)."""

import pytest

from brightpearl import RedisThrottleStore
from connector.models import SyncRun, WebhookEvent
from connector.services.brightpearl import client_for
from connector.tasks import process_inbound_event
from returns.models import Rma
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow


def test_an_event_meeting_a_spent_budget_is_requeued_not_failed(world, celery_worker, redis_url):
    sku = f"KETTLE-{world.bp.code}"
    sale = world.sale([(sku, 1, "30.00", "6.00")])
    loop_return = world.loop_return(sale, [{"sku": sku}])
    celery_worker(BRIGHTPEARL_MAX_BLOCK_SECONDS=2)
    # The account has no budget for the next 8 s (as after a 503): longer than a slot waits.
    RedisThrottleStore(redis_url).pause(client_for(world.connection).throttle.key, 8_000)
    event = WebhookEvent.objects.create(
        connection=world.connection,
        source="loop",
        event="return.created",
        resource_ids=str(loop_return["id"]),
    )
    process_inbound_event.delay(event.pk)

    paused = wait_until(
        lambda: WebhookEvent.objects.filter(pk=event.pk, error__startswith="Paused").first(),
        timeout=30,
        interval=0.1,
    )
    assert paused.status == WebhookEvent.Status.RECEIVED  # due again, not failed
    assert paused.attempts == 0  # waiting for budget is not an attempt
    assert "budget" in paused.error
    assert world.credits() == []
    run = SyncRun.objects.get(trigger=SyncRun.Trigger.WEBHOOK)
    assert run.status == SyncRun.Status.PARTIAL and "budget" in run.message

    # It came back by itself once the budget was there, and did its work exactly once.
    done = wait_until(
        lambda: WebhookEvent.objects.filter(pk=event.pk, status="processed").first(),
        timeout=40,
        interval=0.2,
    )
    assert done.attempts == 1
    assert [c["parentOrderId"] for c in world.credits()] == [sale.order_id]
    assert Rma.objects.get(external_id=str(loop_return["id"])).status == "credited"
