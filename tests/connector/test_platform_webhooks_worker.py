"""One Loop webhook end to end with nothing simulated: the Loop sandbox signs and POSTs over
HTTP to a live Django server, the view stores it and enqueues on Redis after commit, a real
Celery worker re-fetches the return and creates the credit in the Brightpearl sandbox."""

import pytest

from connector.models import SyncRun, WebhookEvent
from returns.models import Rma
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow


def test_signed_loop_webhook_is_processed_by_a_real_worker(world, live_server, celery_worker):
    world.connection.platform_webhook_secret = world.loop.webhook_secret
    world.connection.save()
    celery_worker()
    sku = f"TEAPOT-{world.bp.code}"
    sale = world.sale([(sku, 1, "35.00", "7.00")])
    loop_return = world.loop_return(sale, [{"sku": sku}])
    connection = world.connection
    url = f"{live_server.url}/webhooks/loop/{connection.pk}/{connection.webhook_secret}/"

    delivery = world.loop.fire_webhook(loop_return["id"], "return.created", url=url)
    assert delivery["status"] == 202, delivery

    event = wait_until(
        lambda: WebhookEvent.objects.exclude(status__in=["received", "processing"]).first(),
        timeout=30,
    )
    assert event.status == WebhookEvent.Status.PROCESSED, event.error
    rma = Rma.objects.get(external_id=str(loop_return["id"]))
    assert rma.status == "credited"
    assert [c["parentOrderId"] for c in world.credits()] == [sale.order_id]
    run = SyncRun.objects.get(trigger=SyncRun.Trigger.WEBHOOK)
    assert run.status == SyncRun.Status.SUCCEEDED, run.message
