"""Issue #11: ReturnGO's list poll follows the day's allowance, not the clock. While ReturnGO's
webhooks arrive each one re-reads only the RMA it names, and the scheduled list poll is the
hourly safety net; once the day's reads run low it stops for webhooks' sake. Counted as the
ReturnGO sandbox recorded the requests over real HTTP."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from connector.models import Connection, PlatformCallBudget, SyncRun, WebhookEvent
from connector.services.call_budget import budget_key
from connector.services.sync import run_sync
from tests.support.world import approved_returngo_rma

pytestmark = pytest.mark.django_db


def calls_since(rg, start: int) -> Counter:
    return Counter(
        (method, re.sub(r"\d+", "{id}", path)) for method, path in rg.requests_seen[start:]
    )


def scheduled_sync(world) -> SyncRun:
    world.connection.refresh_from_db()
    return run_sync(world.connection, trigger=SyncRun.Trigger.BEAT).run


def polled_minutes_ago(world, minutes: int) -> None:
    Connection.objects.filter(pk=world.connection.pk).update(
        platform_polled_at=timezone.now() - timedelta(minutes=minutes)
    )


def new_rma(world, sku: str) -> str:
    return approved_returngo_rma(world, sku)


def deliver(world, number: str, event_name: str, capture) -> WebhookEvent:
    connection = world.connection
    with capture(execute=True):
        response = Client().post(
            f"/webhooks/returngo/{connection.pk}/{connection.webhook_secret}/",
            data=world.returngo.webhook_body(number, event_name),
            content_type="application/json",
        )
    assert response.status_code == 202
    return WebhookEvent.objects.filter(resource_ids=str(number)).latest("pk")


def a_webhook_was_just_processed(world) -> None:
    WebhookEvent.objects.create(
        connection=world.connection,
        source="returngo",
        event="RMA_CREATED",
        resource_ids="1",
        status=WebhookEvent.Status.PROCESSED,
        processed_at=timezone.now(),
    )


def test_with_webhooks_arriving_a_done_only_return_costs_two_calls_and_the_poll_is_hourly(
    rg_world, eager, django_capture_on_commit_callbacks
):
    """Each webhook reads only the RMA it names (no list call); the scheduled runs within the
    hour credit, process and say the poll was deferred and why; the hourly poll then brings the
    refunds of all of them in one list call and one transactions call."""
    world, rg = rg_world, rg_world.returngo
    world.connection.mark_shipments_received = False  # Done only: 2 calls per return
    world.connection.save()
    polled_minutes_ago(world, 10)
    sku = "SHAWL-" + world.bp.code
    numbers = [new_rma(world, sku) for _ in range(4)]
    start = len(rg.requests_seen)

    for number in numbers:
        event = deliver(world, number, "RMA_CREATED", django_capture_on_commit_callbacks)
        assert event.status == WebhookEvent.Status.PROCESSED, event.error
    assert calls_since(rg, start) == Counter({("GET", "/rma/{id}"): 4})  # no list call
    assert len(world.credits()) == 4

    for credit in world.credits():
        world.bp.control.receive(credit["id"])
    run = scheduled_sync(world)  # received → Done on ReturnGO; the poll is not due
    assert calls_since(rg, start)[("GET", "/rmas")] == 0
    assert "ReturnGO list poll deferred: its webhooks are arriving" in run.message
    assert run.counts.get("poll_deferred") == 1
    for number in numbers:
        rg.add_transaction(number, "60.00")
    scheduled_sync(world)  # still inside the hour: the refunds wait for the poll
    assert world.payments() == []
    assert calls_since(rg, start)[("GET", "/rmas")] == 0

    polled_minutes_ago(world, 61)
    run = scheduled_sync(world)  # the hourly safety net
    assert "deferred" not in run.message

    calls = calls_since(rg, start)
    assert len(world.payments()) == 4
    assert {rg.get_rma(n)["rmaSummary"]["status"] for n in numbers} == {"Done"}
    assert calls == Counter(
        {
            ("GET", "/rma/{id}"): 4,  # one read each, named by its webhook
            ("PUT", "/rma/{id}/status"): 4,  # Done
            ("GET", "/rmas"): 1,  # one list call in the hour
            ("GET", "/transactions"): 1,  # the four refunds
        }
    )


def test_without_webhooks_and_for_staff_every_run_polls(rg_world):
    world, rg = rg_world, rg_world.returngo
    polled_minutes_ago(world, 10)
    start = len(rg.requests_seen)
    scheduled_sync(world)  # no webhook processed: the poll is all the intake there is
    a_webhook_was_just_processed(world)
    run = world.sync()  # staff asked (command / admin): it polls
    assert "deferred" not in run.message
    assert calls_since(rg, start)[("GET", "/rmas")] == 2


def test_when_the_days_reads_run_low_the_poll_leaves_them_to_the_webhooks(rg_world):
    world, rg = rg_world, rg_world.returngo
    key = budget_key("returngo", world.connection.platform_api_key)
    # 2,000 a day, 200 kept for writes: 199 reads left, under the poll's reserve of 200.
    PlatformCallBudget.objects.create(key=key, day=timezone.now().date(), used=1601)
    start = len(rg.requests_seen)

    scheduled_sync(world)  # no webhooks: it polls, but only hourly from now on
    run = scheduled_sync(world)
    assert calls_since(rg, start)[("GET", "/rmas")] == 1
    assert "only 198 of the day's 2,000 calls are left for reads" in run.message
    assert "runs every 60 min until the allowance resets" in run.message

    a_webhook_was_just_processed(world)
    polled_minutes_ago(world, 120)
    run = scheduled_sync(world)  # webhooks arrive: the rest of the day is theirs
    assert "the next poll after 00:00 UTC" in run.message
    assert calls_since(rg, start)[("GET", "/rmas")] == 1
