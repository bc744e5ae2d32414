"""The one inbound-event pipeline: nothing is left `received` forever, a redelivery of an event
that never finished is processed, and duplicate detection is atomic under concurrency."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest
import requests
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from connector.models import WebhookEvent
from connector.models.webhooks import max_attempts
from connector.services import brightpearl_events, inbound
from connector.tasks import redispatch_inbound_events
from returns.platforms.loop.adapter import signature
from tests.connector.factories import ConnectionFactory
from tests.support.migrations import run_data_migration
from tests.support.processes import wait_until

LOOP_SECRET = "loop-signing-secret-for-pipeline-tests"


def bp_body(connection, ids="5", raised_on="2026-12-01T09:00:00.000Z") -> bytes:
    return json.dumps(
        {
            "accountCode": connection.brightpearl_account,
            "resourceType": "order",
            "id": ids,
            "lifecycleEvent": "modified",
            "fullEvent": "order.modified.order-status",
            "raisedOn": raised_on,
        }
    ).encode()


def bp_url(connection) -> str:
    return f"/webhooks/brightpearl/{connection.pk}/{connection.webhook_secret}/"


def age(event: WebhookEvent, seconds: float) -> None:
    """Move an event's due time into the past, as if that much time had gone by."""
    WebhookEvent.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=seconds)
    )


# --- a locked database is transient, retried with backoff, then failed with the reason ----------


@pytest.mark.django_db
def test_a_locked_database_is_retried_later_then_failed_with_the_reason(monkeypatch):
    event = WebhookEvent.objects.create(
        connection=ConnectionFactory(),
        source="brightpearl",
        event="order.modified.order-status",
        resource_ids="5",
    )

    def locked(ev):
        raise OperationalError("database is locked")

    monkeypatch.setattr(brightpearl_events, "process_event", locked)
    due = []
    for attempt in range(1, max_attempts()):
        step = inbound.process(event.pk)
        event.refresh_from_db()
        assert event.status == WebhookEvent.Status.RECEIVED  # not failed, not stuck: due later
        assert step.retry_at == event.next_attempt_at and step.retry_at > timezone.now()
        assert f"Attempt {attempt} failed" in event.error and "database is locked" in event.error
        due.append(step.retry_at)
    assert inbound.process(event.pk).status == WebhookEvent.Status.FAILED
    event.refresh_from_db()
    assert event.error.startswith(f"Gave up after {max_attempts()} attempts")
    assert "database is locked" in event.error
    assert event.next_attempt_at is None


@pytest.mark.django_db
def test_running_past_the_time_limit_is_retried_not_failed(monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    event = WebhookEvent.objects.create(
        connection=ConnectionFactory(), source="brightpearl", event="order.modified.order-status"
    )

    def slow(ev):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(brightpearl_events, "process_event", slow)
    step = inbound.process(event.pk)
    event.refresh_from_db()
    assert (event.status, step.retry_at) == ("received", event.next_attempt_at)
    assert "time limit" in event.error


@pytest.mark.django_db
def test_a_task_redelivered_after_its_worker_died_resumes_its_claim_at_once(monkeypatch):
    event = WebhookEvent.objects.create(
        connection=ConnectionFactory(), source="brightpearl", event="order.modified.order-status"
    )
    assert event.claim("task-A")  # then the worker is killed: the claim's lease is still live
    assert not WebhookEvent.objects.get(pk=event.pk).claim("task-B")  # another task waits
    # The broker redelivers task A (same ID): it takes its own claim back and finishes.
    assert inbound.process(event.pk, owner="task-A").status == "ignored"
    event.refresh_from_db()
    assert event.attempts == 2


# --- housekeeping: lost tasks, crashed workers, attempts used up ---------------------------------


@pytest.mark.django_db
def test_housekeeping_dispatches_what_was_never_picked_up_or_abandoned(eager):
    connection = ConnectionFactory()
    make = lambda **kw: WebhookEvent.objects.create(  # noqa: E731
        connection=connection,
        source="brightpearl",
        event="order.modified.order-status",
        resource_ids="77",
        **kw,
    )
    lost = make()  # its task vanished with the broker
    fresh = make()  # its task is still on its way: left alone
    crashed = make(status="processing", attempts=1)  # the worker died mid-event
    live = make(status="processing", attempts=1)  # a worker is on it right now
    spent = make(status="processing", attempts=max_attempts(), error="Brightpearl: HTTP 503")
    age(lost, 120)
    age(crashed, 1)
    WebhookEvent.objects.filter(pk=live.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=10)
    )
    age(spent, 1)

    assert redispatch_inbound_events() == 2
    status = dict(WebhookEvent.objects.values_list("pk", "status"))
    assert status[lost.pk] == status[crashed.pk] == "ignored"  # processed to the end
    assert (status[fresh.pk], status[live.pk]) == ("received", "processing")
    spent.refresh_from_db()
    assert spent.status == "failed"
    assert spent.error == f"Gave up after {max_attempts()} attempts: Brightpearl: HTTP 503"


@pytest.mark.django_db
def test_housekeeping_is_scheduled_by_beat():
    """Migration 0008 schedules it (run again here, twice: still one entry)."""
    from django_celery_beat.models import PeriodicTask

    run_data_migration("0008_inbound_event_lifecycle")
    task = PeriodicTask.objects.get(task="connector.tasks.redispatch_inbound_events")
    assert task.enabled and task.interval.every == 60


def test_thirty_lost_tasks_are_processed_by_a_real_worker_after_housekeeping(
    celery_worker, monkeypatch
):
    """Redis restarted without persistence: 30 stored events lost their queued tasks (the
    drain each delivery woke, and any single-event task)."""
    connection = ConnectionFactory()
    monkeypatch.setattr("connector.tasks.process_inbound_event.delay", lambda pk: None)
    monkeypatch.setattr("connector.webhooks.base.wake_inbound", lambda connection: None)
    client = Client()
    for n in range(30):
        body = bp_body(connection, ids=str(1000 + n), raised_on=f"2026-12-01T09:00:{n:02d}.0Z")
        assert (
            client.post(bp_url(connection), body, content_type="application/json").status_code
            == 202
        )
    monkeypatch.undo()
    events = WebhookEvent.objects.filter(connection=connection)
    assert set(events.values_list("status", flat=True)) == {"received"}
    events.update(next_attempt_at=timezone.now() - timedelta(minutes=5))

    celery_worker()
    assert redispatch_inbound_events() == 30
    wait_until(lambda: not events.filter(status__in=["received", "processing"]).exists(), 60)
    assert set(events.values_list("status", flat=True)) == {"ignored"}


# --- a redelivery of an event that never finished is processed, not dropped ---------------------


@pytest.mark.django_db
def test_loop_redelivery_of_an_event_stuck_in_received_is_processed(
    monkeypatch, eager, django_capture_on_commit_callbacks
):
    connection = ConnectionFactory(platform="loop", platform_webhook_secret=LOOP_SECRET)
    body = json.dumps(
        {
            "topic": "return",
            "trigger": "return.updated",
            "id": 9,
            "state": "open",
            "updated_at": "2026-12-01T09:00:00+00:00",
        }
    ).encode()
    headers = {"HTTP_X_LOOP_SIGNATURE": signature(LOOP_SECRET, body)}
    url = f"/webhooks/loop/{connection.pk}/{connection.webhook_secret}/"
    handled = []
    monkeypatch.setattr(
        "connector.services.platform_events.handle",
        lambda ev: handled.append(ev.pk) or inbound.Outcome("processed"),
    )
    # The first delivery is stored but its task never runs (a locked database, a lost message).
    monkeypatch.setattr("connector.tasks.drain_inbound_events.delay", lambda pk: None)
    with django_capture_on_commit_callbacks(execute=True):
        first = Client().post(url, body, content_type="application/json", **headers)
    monkeypatch.undo()
    monkeypatch.setattr(
        "connector.services.platform_events.handle",
        lambda ev: handled.append(ev.pk) or inbound.Outcome("processed"),
    )
    original = WebhookEvent.objects.get(pk=first.json()["received"])
    age(original, 300)

    with django_capture_on_commit_callbacks(execute=True):
        again = Client().post(url, body, content_type="application/json", **headers)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    original.refresh_from_db()
    assert original.status == "processed" and handled == [original.pk]
    redelivery = WebhookEvent.objects.get(pk=again.json()["received"])
    assert (redelivery.status, redelivery.duplicate_of_id) == ("duplicate", original.pk)
    assert "had not finished" in redelivery.error

    # Once finished, a further redelivery is only recorded.
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(url, body, content_type="application/json", **headers)
    assert handled == [original.pk]


@pytest.mark.django_db
def test_redelivery_of_a_failed_event_processes_it_again_with_fresh_attempts(
    eager, django_capture_on_commit_callbacks
):
    connection = ConnectionFactory()
    body = bp_body(connection, ids="41")
    with django_capture_on_commit_callbacks(execute=True):
        first = Client().post(bp_url(connection), body, content_type="application/json")
    original = WebhookEvent.objects.get(pk=first.json()["received"])
    assert original.status == "ignored"  # not ours; now pretend it had failed for good
    WebhookEvent.objects.filter(pk=original.pk).update(status="failed", attempts=6)
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(bp_url(connection), body, content_type="application/json")
    original.refresh_from_db()
    assert (original.status, original.attempts) == ("ignored", 1)


# --- duplicate detection is atomic: 200 identical deliveries on 20 threads ----------------------


@pytest.mark.parametrize("source", ["brightpearl", "loop"])
def test_concurrent_identical_deliveries_are_processed_exactly_once(
    source, postgres, live_server, monkeypatch, transactional_db
):
    connection = ConnectionFactory(
        platform="loop", platform_webhook_secret=LOOP_SECRET, brightpearl_account="race"
    )
    if source == "brightpearl":
        body = bp_body(
            connection, ids="5", raised_on=f"2026-12-01T09:00:00.{uuid.uuid4().int % 999}Z"
        )
        url, headers = live_server.url + bp_url(connection), {}
    else:
        body = json.dumps(
            {
                "topic": "return",
                "trigger": "return.updated",
                "id": 77,
                "updated_at": "2026-12-01T09:00:00+00:00",
                "state": "open",
            }
        ).encode()
        url = f"{live_server.url}/webhooks/loop/{connection.pk}/{connection.webhook_secret}/"
        headers = {"X-Loop-Signature": signature(LOOP_SECRET, body)}
    queued = []
    lock = threading.Lock()

    def record(pk):
        with lock:
            queued.append(pk)

    monkeypatch.setattr("connector.tasks.drain_inbound_events.delay", record)
    answers, barrier = [], threading.Barrier(20)

    def deliver():
        session = requests.Session()
        barrier.wait(timeout=30)
        for _ in range(10):
            response = session.post(
                url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=30
            )
            answers.append(response.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert answers.count(202) == 200
    events = WebhookEvent.objects.filter(connection=connection)
    statuses = list(events.values_list("status", flat=True))
    assert statuses.count("received") == 1 and statuses.count("duplicate") == 199
    original = events.get(status="received")
    assert set(events.filter(status="duplicate").values_list("duplicate_of", flat=True)) == {
        original.pk
    }
    # One drain of the connection was queued (no task per delivery), and it finds one event.
    assert queued == [connection.pk]
    assert inbound.due_events(connection.pk, 10) == [original.pk]
    handled = []
    module = "brightpearl_events" if source == "brightpearl" else "platform_events"
    monkeypatch.setattr(
        f"connector.services.{module}.handle",
        lambda ev: handled.append(ev.pk) or inbound.Outcome("processed"),
    )
    for pk in inbound.due_events(connection.pk, 10):
        inbound.process(pk)
    assert handled == [original.pk]
    assert list(events.filter(status="processed").values_list("pk", flat=True)) == [original.pk]


@pytest.mark.slow
def test_worker_killed_mid_event_resumes_at_once_when_redelivered(world, celery_worker):
    """SIGKILL while an event is processing: the broker redelivers the task (same ID), which
    takes its own claim back at once instead of waiting 15 minutes for the lease to lapse."""
    import os
    import signal

    from connector.tasks import process_inbound_event

    worker = celery_worker()
    event = WebhookEvent.objects.create(
        connection=world.connection,
        source="brightpearl",
        event="goods-in-note.created",
        resource_ids="424242",
    )
    world.bp.control.add_fault(
        r"^/warehouse-service/order/\*/goods-note/goods-in",
        "delay",
        method="GET",
        seconds=3,
        times=1,
    )
    process_inbound_event.delay(event.pk)
    wait_until(
        lambda: WebhookEvent.objects.filter(pk=event.pk, status="processing").exists(),
        timeout=30,
        interval=0.02,
    )
    [child] = worker.children()
    os.kill(child, signal.SIGKILL)

    done = wait_until(
        lambda: WebhookEvent.objects.filter(pk=event.pk, status="ignored").first(), timeout=40
    )
    assert done.attempts == 2
    assert "no goods-in note 424242" in done.error
