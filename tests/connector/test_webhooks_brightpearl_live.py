"""End to end over real HTTP: the Brightpearl sandbox fires the subscriptions the connector
registered at a live Django server, and a real Celery worker (Redis, PostgreSQL) processes them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connector.models import SyncRun, WebhookEvent
from connector.services import subscriptions
from returns.models import Rma
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def live_world(world, celery_worker, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    celery_worker()
    subscriptions.register(world.connection)
    return world


def credited_return(world, sku: str, quantity: int):
    sale = world.sale([(sku, quantity, f"{10 * quantity}.00", f"{2 * quantity}.00")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": quantity}])
    world.sync()
    return Rma.objects.get(connection=world.connection, external_id=str(loop_return["id"]))


def test_goods_in_fired_by_brightpearl_is_processed_by_a_real_worker(live_world):
    world = live_world
    rmas = [credited_return(world, f"LIVE{n}-{world.bp.code}", n + 1) for n in range(2)]
    for rma in rmas:
        world.bp.control.receive(rma.sales_credit.credit_id)

    def all_received():
        lines = [line for rma in rmas for line in rma.lines.all()]
        return all(line.quantity_received == line.quantity for line in lines)

    wait_until(all_received, timeout=30)
    wait_until(
        lambda: all(
            r.status == "processed" for r in Rma.objects.filter(pk__in=[r.pk for r in rmas])
        ),
        timeout=30,
    )
    for rma in rmas:
        assert world.loop.actions_for(rma.external_id).count("process") == 1

    deliveries = [
        d for d in world.bp.control.webhook_deliveries() if d["event"] == "goods-in-note.created"
    ]
    assert deliveries and all(d["status"] == 202 for d in deliveries)
    events = WebhookEvent.objects.filter(connection=world.connection, event="goods-in-note.created")
    assert events.count() == len(deliveries)
    unfinished = [WebhookEvent.Status.RECEIVED, WebhookEvent.Status.PROCESSING]
    wait_until(lambda: not events.filter(status__in=unfinished).exists(), timeout=30)
    assert {e.remote_addr for e in events} == {"127.0.0.1"}
    assert set(events.values_list("status", flat=True)) <= {"processed", "ignored"}
    runs = SyncRun.objects.filter(connection=world.connection, trigger=SyncRun.Trigger.WEBHOOK)
    assert runs.exists() and all(r.brightpearl_requests > 0 for r in runs)
    # The secret travelled in the URL only: never stored with the event.
    assert not any(world.connection.webhook_secret in (e.body + str(e.headers)) for e in events)


def test_order_status_event_for_a_sales_order_is_ignored(live_world):
    world = live_world
    sale = world.sale([(f"IGN-{world.bp.code}", 1, "10.00", "2.00")])
    world.bp.control.set_order_status(sale.order_id, 4)
    event = wait_until(
        lambda: (
            WebhookEvent.objects.filter(
                connection=world.connection, event="order.modified.order-status"
            )
            .exclude(status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.PROCESSING])
            .first()
        ),
        timeout=30,
    )
    assert event.status == WebhookEvent.Status.IGNORED
    assert "not sales credits made by this connection" in event.error


def test_admin_send_test_webhook_reports_the_arrival(live_world, admin_client):
    response = admin_client.post(
        reverse("admin:connector_connection_changelist"),
        {"action": "send_test_webhook", "_selected_action": [str(live_world.connection.pk)]},
        follow=True,
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert "arrived" in message, message
    assert live_world.connection.webhook_secret not in message
    event = WebhookEvent.objects.get(connection=live_world.connection)
    assert event.resource_ids == "999999"
    wait_until(lambda: WebhookEvent.objects.get(pk=event.pk).status == "ignored", timeout=30)


def test_concurrent_deliveries_for_the_same_credit_process_once(
    world, postgres, transactional_db, monkeypatch
):
    """Four executions (threads, own database connections) handle events naming the same
    credit at the same moment: the platform is told to process once (counted at the adapter:
    Loop itself would refuse a second call, which hides nothing but is not ours to rely on)."""
    import threading

    from django.db import connection as db_connection

    from connector.tasks import process_inbound_event
    from returns.platforms.loop.adapter import LoopPlatform

    calls = []
    real_process = LoopPlatform.process

    def counted(self, rma):
        calls.append(rma.pk)
        return real_process(self, rma)

    monkeypatch.setattr(LoopPlatform, "process", counted)

    rma = credited_return(world, f"RACE-{world.bp.code}", 2)
    note = world.bp.control.receive(rma.sales_credit.credit_id)["goodsNoteId"]
    # Hold every execution's receipt read for a moment, so all four decide together.
    world.bp.control.add_fault(
        rf"^/warehouse-service/order/{rma.sales_credit.credit_id}/goods-note/goods-in",
        "delay",
        method="GET",
        seconds=0.5,
        times=4,
    )
    events = [
        WebhookEvent.objects.create(
            connection=world.connection,
            source="brightpearl",
            event="goods-in-note.created",
            resource_ids=str(note),
        )
        for _ in range(4)
    ]
    barrier = threading.Barrier(len(events))
    errors = []

    def work(pk):
        try:
            barrier.wait(timeout=10)
            process_inbound_event.apply((pk,))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=work, args=(e.pk,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert calls == [rma.pk]
    assert world.loop.actions_for(rma.external_id).count("process") == 1
    rma.refresh_from_db()
    assert rma.status == "processed"
    statuses = set(WebhookEvent.objects.values_list("status", flat=True))
    assert statuses <= {"processed", "ignored"}, statuses


def test_command_test_flag_reports_the_arrival(live_world, capsys):
    from django.core.management import call_command

    call_command("connector_webhooks", str(live_world.connection.pk), "--test")
    out = capsys.readouterr().out
    assert "arrived" in out and "•••" not in out  # the message names no URI on success
    assert live_world.connection.webhook_secret not in out
