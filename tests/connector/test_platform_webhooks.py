"""Loop and ReturnGO webhooks: security, storage, deduplication, and processing by re-fetch.

Processing runs eagerly in-process here (Celery `task_always_eager`, on-commit callbacks
executed); `test_platform_webhooks_worker.py` runs it on a real worker.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from config.celery_app import app as celery_app
from connector.models import BindingState, Connection, SalesCredit, SyncRun, WebhookEvent
from connector.models.webhooks import backoff_delay, max_attempts
from connector.services import inbound, platform_events
from connector.tasks import enqueue_events
from returns.models import Rma
from returns.platforms.errors import ServerError
from returns.platforms.loop.adapter import signature
from tests.connector.factories import ConnectionFactory
from tests.connector.webhook_cases import WebhookSecurityCases


def process_event(pk):
    return inbound.process(pk).status


LOOP_SECRET = "loop-signing-secret-for-tests"


def loop_url(connection, secret=None) -> str:
    return (
        f"/webhooks/loop/{connection.pk}/{connection.webhook_secret if secret is None else secret}/"
    )


def returngo_url(connection, secret=None) -> str:
    secret = connection.webhook_secret if secret is None else secret
    return f"/webhooks/returngo/{connection.pk}/{secret}/"


def loop_body(return_id=1234, trigger="return.updated", state="open", **extra) -> bytes:
    payload = {
        "topic": "return",
        "trigger": trigger,
        "id": return_id,
        "state": state,
        "updated_at": "2026-11-23T10:00:00+00:00",
        **extra,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def post_loop(connection, body: bytes, signature_value: str | None = "sign", client=None):
    headers = {}
    if signature_value == "sign":
        signature_value = signature(connection.platform_webhook_secret, body)
    if signature_value is not None:
        headers["HTTP_X_LOOP_SIGNATURE"] = signature_value
    return (client or Client()).post(
        loop_url(connection), data=body, content_type="application/json", **headers
    )


# --- security: the shared cases, per platform ----------------------------------------------
@pytest.mark.django_db
class TestLoopWebhookSecurity(WebhookSecurityCases):
    source = WebhookEvent.Source.LOOP

    @pytest.fixture
    def hook_connection(self):
        return ConnectionFactory(platform="loop", platform_webhook_secret=LOOP_SECRET)

    def url(self, connection, secret):
        return loop_url(connection, secret)

    def valid_body(self, connection) -> bytes:
        return loop_body()

    def signed_headers(self, connection, body: bytes) -> dict:
        return {"X-Loop-Signature": signature(LOOP_SECRET, body)}

    def test_valid_signature_is_accepted_and_parsed(self, hook_connection):
        response = post_loop(hook_connection, loop_body(return_id=77))
        assert response.status_code == 202
        event = WebhookEvent.objects.get()
        assert (event.event, event.resource_ids, event.status) == (
            "return.updated",
            "77",
            WebhookEvent.Status.RECEIVED,
        )
        assert event.dedupe_key.startswith("loop:77:return.updated:")
        assert event.headers.get("X-Loop-Signature")

    def test_invalid_signature_is_recorded_and_answered_401(self, hook_connection):
        body = loop_body()
        response = post_loop(hook_connection, body, signature(LOOP_SECRET + "x", body))
        assert response.status_code == 401
        event = WebhookEvent.objects.get()
        assert event.status == WebhookEvent.Status.REJECTED
        assert "X-Loop-Signature" in event.error

    def test_signature_of_another_body_is_refused(self, hook_connection):
        response = post_loop(hook_connection, loop_body(), signature(LOOP_SECRET, b"{}"))
        assert response.status_code == 401

    def test_missing_signature_is_recorded_and_answered_401(self, hook_connection):
        response = post_loop(hook_connection, loop_body(), signature_value=None)
        assert response.status_code == 401
        assert WebhookEvent.objects.get().status == WebhookEvent.Status.REJECTED

    def test_no_signing_secret_configured_refuses_everything(self, hook_connection):
        body = loop_body()
        good = signature(LOOP_SECRET, body)
        Connection.objects.filter(pk=hook_connection.pk).update(platform_webhook_secret="")
        hook_connection.refresh_from_db()
        response = post_loop(hook_connection, body, good)
        assert response.status_code == 401
        assert "No Loop Returns webhook signing secret" in WebhookEvent.objects.get().error

    def test_rotated_signing_secret_refuses_the_old_one(self, hook_connection):
        body = loop_body()
        old = signature(LOOP_SECRET, body)
        hook_connection.platform_webhook_secret = "rotated-secret"
        hook_connection.save()
        assert post_loop(hook_connection, body, old).status_code == 401
        assert post_loop(hook_connection, body).status_code == 202

    def test_body_without_return_id_is_400(self, hook_connection):
        response = post_loop(hook_connection, b'{"topic":"return","trigger":"return.updated"}')
        assert response.status_code == 400
        assert WebhookEvent.objects.get().status == WebhookEvent.Status.REJECTED

    def test_loop_route_of_a_returngo_connection_is_404(self):
        other = ConnectionFactory(platform="returngo", platform_shop_name="x.myshopify.com")
        body = loop_body()
        response = Client().post(loop_url(other), data=body, content_type="application/json")
        assert response.status_code == 404
        assert not WebhookEvent.objects.exists()

    def test_disabled_connection_is_recorded_and_refused(self, hook_connection):
        Connection.objects.filter(pk=hook_connection.pk).update(enabled=False)
        response = post_loop(hook_connection, loop_body())
        assert response.status_code == 409
        assert WebhookEvent.objects.get().status == WebhookEvent.Status.REJECTED

    def test_same_delivery_twice_is_stored_twice_but_enqueued_once(
        self, hook_connection, django_capture_on_commit_callbacks, monkeypatch
    ):
        queued, drains = [], []
        monkeypatch.setattr(
            "connector.tasks.process_inbound_event.delay", lambda pk: queued.append(pk)
        )
        monkeypatch.setattr(
            "connector.tasks.drain_inbound_events.delay", lambda pk: drains.append(pk)
        )
        body = loop_body()
        with django_capture_on_commit_callbacks(execute=True):
            first = post_loop(hook_connection, body)
            second = post_loop(hook_connection, body)
        assert (first.status_code, second.status_code) == (202, 202)
        assert second.json()["duplicate"] is True
        statuses = list(WebhookEvent.objects.order_by("pk").values_list("status", flat=True))
        assert statuses == [WebhookEvent.Status.RECEIVED, WebhookEvent.Status.DUPLICATE]
        # One drain of the connection for the first delivery; nothing for the duplicate.
        assert (drains, queued) == ([hook_connection.pk], [])


@pytest.mark.django_db
class TestReturnGOWebhookSecurity(WebhookSecurityCases):
    source = WebhookEvent.Source.RETURNGO

    @pytest.fixture
    def hook_connection(self):
        return ConnectionFactory(platform="returngo", platform_shop_name="shop.myshopify.com")

    def url(self, connection, secret):
        return returngo_url(connection, secret)

    def valid_body(self, connection) -> bytes:
        return (
            b'{"eventName":"RMA_STATUS_UPDATED","rmaId":"1001","eventDate":"2026-11-23T10:00:00Z"}'
        )

    def test_parsed_hint_names_the_rma(self, hook_connection):
        response = self.post(hook_connection, self.valid_body(hook_connection))
        assert response.status_code == 202
        event = WebhookEvent.objects.get()
        assert (event.event, event.resource_ids) == ("RMA_STATUS_UPDATED", "1001")

    def test_body_naming_no_rma_is_400(self, hook_connection):
        response = self.post(hook_connection, b'{"eventName":"RMA_CREATED"}')
        assert response.status_code == 400
        assert "names no RMA" in WebhookEvent.objects.get().error

    def test_returngo_route_of_a_loop_connection_is_404(self):
        other = ConnectionFactory(platform="loop")
        response = Client().post(
            returngo_url(other), data=self.valid_body(other), content_type="application/json"
        )
        assert response.status_code == 404
        assert not WebhookEvent.objects.exists()


# --- processing: Loop sandbox + Brightpearl sandbox, in-process -----------------------------
@pytest.fixture
def loop_world(world):
    world.connection.platform_webhook_secret = world.loop.webhook_secret
    world.connection.save()
    return world


def deliver(world, return_id, trigger, capture, body: bytes | None = None):
    """Deliver what Loop would send for the return's current state (or `body`), signed."""
    body = body or world.loop.webhook_body(return_id, trigger)
    with capture(execute=True):
        response = Client().post(
            loop_url(world.connection),
            data=body,
            content_type="application/json",
            HTTP_X_LOOP_SIGNATURE=world.loop.sign(body),
        )
    assert response.status_code == 202, response.content
    return WebhookEvent.objects.get(pk=response.json()["received"])


def approved_return(world, sku_prefix="MUG"):
    sku = f"{sku_prefix}-{world.bp.code}"
    sale = world.sale([(sku, 2, "24.00", "4.80")])
    loop_return = world.loop_return(sale, [{"sku": sku}])
    return sale, loop_return


@pytest.mark.django_db
def test_webhook_for_an_approved_return_creates_its_credit_at_once(
    loop_world, eager, django_capture_on_commit_callbacks
):
    sale, loop_return = approved_return(loop_world)
    event = deliver(
        loop_world, loop_return["id"], "return.created", django_capture_on_commit_callbacks
    )
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED, event.error
    assert event.attempts == 1
    rma = Rma.objects.get(external_id=str(loop_return["id"]))
    assert rma.status == "credited"
    [credit] = loop_world.credits()
    assert credit["parentOrderId"] == sale.order_id
    assert rma.sales_credit.credit_id == credit["id"]
    run = SyncRun.objects.get(trigger=SyncRun.Trigger.WEBHOOK)
    assert run.status == SyncRun.Status.SUCCEEDED, run.message
    assert set(run.events.values_list("kind", flat=True)) == {"intake", "credit"}


@pytest.mark.django_db
def test_duplicate_webhook_is_processed_once(loop_world, eager, django_capture_on_commit_callbacks):
    _, loop_return = approved_return(loop_world)
    body = loop_world.loop.webhook_body(loop_return["id"], "return.created")
    first = deliver(loop_world, None, None, django_capture_on_commit_callbacks, body=body)
    second = deliver(loop_world, None, None, django_capture_on_commit_callbacks, body=body)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == WebhookEvent.Status.PROCESSED
    assert second.status == WebhookEvent.Status.DUPLICATE
    assert SyncRun.objects.filter(trigger=SyncRun.Trigger.WEBHOOK).count() == 1
    assert len(loop_world.credits()) == 1
    assert Rma.objects.count() == 1


@pytest.mark.django_db
def test_replayed_webhook_after_processing_makes_no_second_credit(
    loop_world, eager, django_capture_on_commit_callbacks
):
    """A different delivery about the same return (new dedupe key) is processed again: the
    re-fetch and the exactly-once credit path make it harmless."""
    _, loop_return = approved_return(loop_world)
    deliver(loop_world, loop_return["id"], "return.created", django_capture_on_commit_callbacks)
    deliver(loop_world, loop_return["id"], "label.created", django_capture_on_commit_callbacks)
    assert len(loop_world.credits()) == 1
    assert WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSED).count() == 2
    assert Rma.objects.get().status == "credited"


@pytest.mark.django_db
def test_out_of_order_webhooks_end_in_the_same_state(
    loop_world, eager, django_capture_on_commit_callbacks
):
    """Two returns go open → closed in Loop. One's webhooks arrive in order, the other's
    reversed (the delayed 'created' after 'closed'): both end closed, with no credit."""
    capture = django_capture_on_commit_callbacks
    ends = {}
    for order in ("in_order", "reversed"):
        _, loop_return = approved_return(loop_world, sku_prefix=f"JUG{order}")
        rid = loop_return["id"]
        created = loop_world.loop.webhook_body(rid, "return.created")
        loop_world.loop.set_state(rid, "closed")
        closed = loop_world.loop.webhook_body(rid, "return.closed")
        bodies = [created, closed] if order == "in_order" else [closed, created]
        for body in bodies:
            event = deliver(loop_world, None, None, capture, body=body)
            event.refresh_from_db()
            assert event.status == WebhookEvent.Status.PROCESSED, event.error
        rma = Rma.objects.get(external_id=str(rid))
        ends[order] = (rma.status, rma.platform_status, SalesCredit.objects.filter(rma=rma).count())
    assert ends["in_order"] == ends["reversed"] == ("closed", "closed", 0)
    assert loop_world.credits() == []


@pytest.mark.django_db
def test_old_webhook_after_credit_does_not_move_the_rma_backwards(
    loop_world, eager, django_capture_on_commit_callbacks
):
    _, loop_return = approved_return(loop_world)
    rid = loop_return["id"]
    stale = loop_world.loop.webhook_body(rid, "return.created")  # says "open"
    deliver(loop_world, rid, "return.updated", django_capture_on_commit_callbacks)
    assert Rma.objects.get().status == "credited"
    # Loop re-sends the old creation hint, and the platform still says "open".
    deliver(loop_world, None, None, django_capture_on_commit_callbacks, body=stale)
    rma = Rma.objects.get()
    assert rma.status == "credited"
    assert len(loop_world.credits()) == 1


@pytest.mark.django_db
def test_refund_webhook_records_the_payment(loop_world, eager, django_capture_on_commit_callbacks):
    _, loop_return = approved_return(loop_world)
    rid = loop_return["id"]
    deliver(loop_world, rid, "return.created", django_capture_on_commit_callbacks)
    credit_id = Rma.objects.get().sales_credit.credit_id
    loop_world.loop.add_refund(rid, "14.40")  # one of the two mugs: the credit's total
    event = deliver(loop_world, rid, "return.updated", django_capture_on_commit_callbacks)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED, event.error
    payments = [p for p in loop_world.payments() if p["orderId"] == credit_id]
    assert len(payments) == 1
    assert str(payments[0]["amountPaid"]).startswith("14.4")
    run = SyncRun.objects.filter(trigger=SyncRun.Trigger.WEBHOOK).first()
    assert run.events.filter(kind="refund", outcome="succeeded").exists()


@pytest.mark.django_db
def test_unknown_return_is_ignored_with_the_reason(
    loop_world, eager, django_capture_on_commit_callbacks
):
    body = json.dumps(
        {"topic": "return", "trigger": "return.updated", "id": 987654, "state": "open"},
        separators=(",", ":"),
    ).encode()
    event = deliver(loop_world, None, None, django_capture_on_commit_callbacks, body=body)
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.IGNORED
    assert "does not know return 987654" in event.error
    assert not Rma.objects.exists()


@pytest.mark.django_db
def test_a_4xx_from_the_platform_fails_at_once_without_retry(
    loop_world, eager, django_capture_on_commit_callbacks
):
    _, loop_return = approved_return(loop_world)
    Connection.objects.filter(pk=loop_world.connection.pk).update(platform_api_key="wrong-key")
    event = deliver(
        loop_world, loop_return["id"], "return.created", django_capture_on_commit_callbacks
    )
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.FAILED
    assert "not retried" in event.error and "401" in event.error
    assert event.attempts == 1
    run = SyncRun.objects.get(trigger=SyncRun.Trigger.WEBHOOK)
    assert run.status == SyncRun.Status.FAILED


@pytest.mark.django_db
def test_disabled_after_receipt_is_ignored(loop_world):
    _, loop_return = approved_return(loop_world)
    event = WebhookEvent.objects.create(
        connection=loop_world.connection,
        source="loop",
        event="return.created",
        resource_ids=str(loop_return["id"]),
    )
    Connection.objects.filter(pk=loop_world.connection.pk).update(enabled=False)
    assert process_event(event.pk) == WebhookEvent.Status.IGNORED
    event.refresh_from_db()
    assert event.error == "The connection is disabled."
    assert not Rma.objects.exists()


class FlakyAdapter:
    def __init__(self):
        self.calls = 0

    def fetch(self, external_id):
        self.calls += 1
        raise ServerError("upstream unavailable", status=503)


@pytest.mark.django_db
def test_transient_platform_error_retries_with_capped_backoff_then_fails(loop_world, monkeypatch):
    flaky = FlakyAdapter()
    monkeypatch.setattr(platform_events, "adapter_for", lambda connection, **kw: flaky)
    event = WebhookEvent.objects.create(
        connection=loop_world.connection, source="loop", event="return.updated", resource_ids="5"
    )
    due = []
    for _ in range(max_attempts() - 1):
        step = inbound.process(event.pk)
        assert step.retry_at is not None
        due.append((step.retry_at - timezone.now()).total_seconds())
        event.refresh_from_db()
        assert event.status == WebhookEvent.Status.RECEIVED
        assert "retrying" in event.error
    assert process_event(event.pk) == WebhookEvent.Status.FAILED
    event.refresh_from_db()
    assert event.error.startswith("Gave up after 6 attempts:") and "503" in event.error
    assert event.attempts == max_attempts() == flaky.calls
    assert all(d <= 30 * 60 for d in due)
    assert due[-1] > due[0]
    # Every attempt is a recorded run.
    assert SyncRun.objects.filter(status=SyncRun.Status.FAILED).count() == flaky.calls


@pytest.mark.django_db
def test_task_retries_then_records_the_failure(loop_world, eager, monkeypatch):
    from connector.tasks import process_inbound_event, redispatch_inbound_events

    flaky = FlakyAdapter()
    monkeypatch.setattr(platform_events, "adapter_for", lambda connection, **kw: flaky)
    event = WebhookEvent.objects.create(
        connection=loop_world.connection, source="loop", event="return.updated", resource_ids="5"
    )
    # Eager mode re-applies a retry in place, unless errors propagate first.
    celery_app.conf.task_eager_propagates = False
    try:
        process_inbound_event.delay(event.pk)  # eager: each short retry's eta is ignored
        event.refresh_from_db()
        while event.status == WebhookEvent.Status.RECEIVED:
            # A backoff longer than a broker countdown waits in the database; housekeeping
            # queues the event once it is due.
            assert event.next_attempt_at > timezone.now() + timedelta(seconds=100)
            WebhookEvent.objects.filter(pk=event.pk).update(
                next_attempt_at=timezone.now() - timedelta(hours=1)
            )
            redispatch_inbound_events.delay()
            event.refresh_from_db()
    finally:
        celery_app.conf.task_eager_propagates = True
    assert event.status == WebhookEvent.Status.FAILED
    assert flaky.calls == max_attempts()


def test_backoff_is_capped_and_honours_retry_after(settings):
    settings.CELERY_TASK_RETRY_BACKOFF_MAX = 600
    assert backoff_delay(1) <= 30
    assert backoff_delay(20) <= 600
    assert backoff_delay(1, retry_after=42) == 42
    assert backoff_delay(1, retry_after=10_000) == 600


# --- ReturnGO end to end --------------------------------------------------------------------
@pytest.mark.django_db
def test_returngo_webhook_creates_the_credit(
    world, returngo_server, eager, django_capture_on_commit_callbacks
):
    returngo_server.reset()
    connection = world.connection
    connection.platform = "returngo"
    connection.platform_api_key = returngo_server.api_key
    connection.platform_shop_name = returngo_server.shop_name
    connection.platform_api_url = returngo_server.url
    connection.save()
    sku = f"LAMP-{world.bp.code}"
    sale = world.sale([(sku, 1, "40.00", "8.00")])
    rma = returngo_server.add_rma(
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        items=[{"sku": sku, "price": "40.00"}],
        fire=False,
    )
    number = rma["rmaSummary"]["rmaId"]
    body = returngo_server.webhook_body(number, "RMA_CREATED")
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(
            returngo_url(connection), data=body, content_type="application/json"
        )
    assert response.status_code == 202
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED, event.error
    stored = Rma.objects.get(platform="returngo", external_id=str(number))
    assert stored.status == "credited"
    assert stored.sales_credit.state == BindingState.CREATED
    assert [c["parentOrderId"] for c in world.credits()] == [sale.order_id]


# --- a real signed delivery over HTTP to a live server ---------------------------------------
def test_loop_sandbox_fires_a_signed_webhook_at_a_live_server(loop_world, live_server, eager):
    sale, loop_return = approved_return(loop_world)
    url = live_server.url + loop_url(loop_world.connection)
    delivery = loop_world.loop.fire_webhook(loop_return["id"], "return.created", url=url)
    assert delivery["status"] == 202, delivery
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED, event.error
    assert event.headers["X-Loop-Signature"] == delivery["headers"]["X-Loop-Signature"]
    rma = Rma.objects.get(external_id=str(loop_return["id"]))
    assert rma.status == "credited"
    assert [c["parentOrderId"] for c in loop_world.credits()] == [sale.order_id]
    # A forged delivery (wrong signing secret) is refused over HTTP too.
    loop_world.loop.configure(webhook_secret="not-the-merchants-secret")
    forged = loop_world.loop.fire_webhook(loop_return["id"], "return.updated", url=url)
    assert forged["status"] == 401
    assert len(loop_world.credits()) == 1


@pytest.mark.django_db
def test_broker_down_leaves_the_event_overdue_so_the_retry_processes_it(
    monkeypatch, django_capture_on_commit_callbacks
):
    connection = ConnectionFactory(platform="loop", platform_webhook_secret=LOOP_SECRET)

    def broker_down(pk):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("connector.tasks.drain_inbound_events.delay", broker_down)
    body = loop_body()
    # Outside a test transaction on_commit runs at once and the sender gets a 500.
    with pytest.raises(ConnectionError):
        with django_capture_on_commit_callbacks(execute=True):
            post_loop(connection, body)
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.RECEIVED
    assert "Could not queue processing" in event.error
    assert list(WebhookEvent.objects.due_again()) == [event]  # housekeeping would send it
    monkeypatch.undo()
    queued = []
    monkeypatch.setattr("connector.tasks.process_inbound_event.delay", lambda pk: queued.append(pk))
    with django_capture_on_commit_callbacks(execute=True):
        response = post_loop(connection, body)  # the sender's retry
    assert response.json()["duplicate"] is True
    assert queued == [event.pk]  # the first delivery, which never ran, is queued now


@pytest.mark.django_db
def test_reprocess_puts_platform_events_back_in_the_queue(
    loop_world, eager, django_capture_on_commit_callbacks
):
    _, loop_return = approved_return(loop_world)
    event = WebhookEvent.objects.create(
        connection=loop_world.connection,
        source="loop",
        event="return.created",
        resource_ids=str(loop_return["id"]),
        status=WebhookEvent.Status.FAILED,
        attempts=6,
        error="Gave up: …",
    )
    rejected = WebhookEvent.objects.create(
        connection=loop_world.connection, source="loop", status=WebhookEvent.Status.REJECTED
    )
    with django_capture_on_commit_callbacks(execute=True):
        ids = inbound.reprocess([event.pk, rejected.pk])
        enqueue_events(ids)
    assert ids == [event.pk]
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == (WebhookEvent.Status.PROCESSED, 1, "")
    assert len(loop_world.credits()) == 1
