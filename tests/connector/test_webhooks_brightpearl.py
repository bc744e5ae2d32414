"""Brightpearl webhooks: the endpoint's security and parsing, and processing of the events it
stores (the same receipt code path as polling) against the Brightpearl and Loop sandboxes."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from brightpearl import ServerError, ValidationError, format_id_set
from connector.models import SalesCredit, SyncEvent, SyncRun, WebhookEvent
from connector.models.webhooks import backoff_delay, max_attempts
from connector.services import brightpearl_events
from connector.services.context import SyncContext
from connector.services.receipts import update_receipts
from connector.tasks import (
    drain_inbound_events,
    process_inbound_event,
    redispatch_inbound_events,
)
from returns.models import Rma
from tests.connector.factories import ConnectionFactory
from tests.connector.webhook_cases import WebhookSecurityCases

pytestmark = pytest.mark.django_db


def url_for(connection, secret=None) -> str:
    return f"/webhooks/brightpearl/{connection.pk}/{secret or connection.webhook_secret}/"


def event_body(connection, full_event: str, ids, raised_on: str | None = None, **extra) -> bytes:
    resource_type, _, rest = full_event.partition(".")
    body = {
        "accountCode": connection.brightpearl_account,
        "resourceType": resource_type,
        "id": ids if isinstance(ids, str) else format_id_set(ids),
        "lifecycleEvent": rest.partition(".")[0],
        "fullEvent": full_event,
        "raisedOn": raised_on or f"2026-11-23T10:00:00.{uuid.uuid4().int % 1000:03d}Z",
        "brightpearlVersion": "4.95.2647",
        **extra,
    }
    return json.dumps(body).encode()


class TestBrightpearlEndpointSecurity(WebhookSecurityCases):
    source = WebhookEvent.Source.BRIGHTPEARL

    @pytest.fixture
    def hook_connection(self):
        return ConnectionFactory()

    def url(self, connection, secret):
        return url_for(connection, secret)

    def valid_body(self, connection) -> bytes:
        return event_body(connection, "goods-in-note.created", "1-5,99")


def post(connection, body: bytes, capture=None):
    if capture is None:
        return Client().post(url_for(connection), data=body, content_type="application/json")
    with capture(execute=True):
        return Client().post(url_for(connection), data=body, content_type="application/json")


# --- parsing and rejection -------------------------------------------------------------------


def test_accepted_event_is_parsed_and_queued_after_commit(django_capture_on_commit_callbacks):
    connection = ConnectionFactory()
    body = event_body(connection, "goods-in-note.created", "5,1-3")
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(connection, body)
    assert response.status_code == 202
    event = WebhookEvent.objects.get()
    assert (event.event, event.resource_type, event.resource_ids) == (
        "goods-in-note.created",
        "goods-in-note",
        "1-3,5",
    )
    assert event.status == WebhookEvent.Status.RECEIVED
    assert len(callbacks) == 1  # processing is enqueued only once the row is committed


def test_the_event_keeps_the_support_headers_and_never_cookies_or_authorization():
    connection = ConnectionFactory()
    response = Client().post(
        url_for(connection),
        data=event_body(connection, "goods-in-note.created", "7"),
        content_type="application/json",
        HTTP_USER_AGENT="Brightpearl-Webhooks/1.0",
        HTTP_X_REQUEST_ID="req-42",
        HTTP_AUTHORIZATION="Bearer not-to-be-kept",
        HTTP_COOKIE="sessionid=not-to-be-kept",
    )
    assert response.status_code == 202
    headers = WebhookEvent.objects.get().headers
    assert headers["User-Agent"] == "Brightpearl-Webhooks/1.0"
    assert headers["X-Request-Id"] == "req-42"
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) > 0
    assert "not-to-be-kept" not in json.dumps(headers)


@pytest.mark.parametrize(
    "change, error",
    [
        ({"fullEvent": "product.modified"}, "Unsupported event"),
        ({"fullEvent": "sales-credit.exploded"}, "Unsupported event"),
        ({"accountCode": "someone-else"}, "not this connection's"),
        ({"accountCode": ""}, "accountCode is missing"),
        ({"id": "5-1"}, "not a valid ID set"),
        ({"id": "1,,2"}, "not a valid ID set"),
        ({"id": "*"}, "not a valid ID set"),
        ({"id": None}, "not a valid ID set"),
        ({"id": "1-999999999"}, "more than 2000"),
        ({"id": "1-1500,3000-3600"}, "more than 2000"),
    ],
)
def test_bad_events_are_recorded_and_answered_400(change, error):
    connection = ConnectionFactory()
    body = json.loads(event_body(connection, "goods-in-note.created", [1]))
    body.update(change)
    response = post(connection, json.dumps(body).encode())
    assert response.status_code == 400
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.REJECTED
    assert error in event.error
    assert event.body == json.dumps(body)


def test_unknown_event_is_400_and_recorded_not_processed(django_capture_on_commit_callbacks):
    connection = ConnectionFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(connection, event_body(connection, "contact.created", [7]))
    assert response.status_code == 400
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.REJECTED
    assert callbacks == []


def test_redelivery_of_the_same_event_is_stored_as_duplicate(django_capture_on_commit_callbacks):
    connection = ConnectionFactory()
    body = event_body(connection, "order.modified.order-status", [42], "2026-11-23T10:00:00.1Z")
    with django_capture_on_commit_callbacks() as callbacks:
        answers = [post(connection, body).json() for _ in range(3)]
    assert [a["duplicate"] for a in answers] == [False, True, True]
    assert len(callbacks) == 1
    statuses = sorted(WebhookEvent.objects.values_list("status", flat=True))
    assert statuses == ["duplicate", "duplicate", "received"]


# --- processing against the sandboxes --------------------------------------------------------


def returned(world, *skus_qty):
    """A sale and an approved return of it, credited in Brightpearl by a sync."""
    sale = world.sale([(sku, qty, f"{10 * qty}.00", f"{2 * qty}.00") for sku, qty in skus_qty])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": q} for sku, q in skus_qty])
    return sale, loop_return


def rma_of(world, loop_return) -> Rma:
    return Rma.objects.get(connection=world.connection, external_id=str(loop_return["id"]))


def credits_of(world, *loop_returns) -> list[SalesCredit]:
    return [rma_of(world, r).sales_credit for r in loop_returns]


def test_one_id_set_event_covering_several_credits(
    world, eager, django_capture_on_commit_callbacks
):
    code = world.bp.code
    returns = [returned(world, (f"A-{code}", 1))[1], returned(world, (f"B-{code}", 2))[1]]
    returns.append(returned(world, (f"C-{code}", 1), (f"D-{code}", 1))[1])
    world.sync()
    notes = [
        world.bp.control.receive(b.credit_id)["goodsNoteId"] for b in credits_of(world, *returns)
    ]

    response = post(
        world.connection,
        event_body(world.connection, "goods-in-note.created", notes),
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 202
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED, event.error
    for loop_return in returns:
        rma = rma_of(world, loop_return)
        assert rma.status == "processed"
        assert all(line.quantity_received == line.quantity for line in rma.lines.all())
        assert world.loop.actions_for(loop_return["id"]).count("process") == 1
    run = SyncRun.objects.get(trigger=SyncRun.Trigger.WEBHOOK)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.brightpearl_requests > 0
    assert run.events.filter(kind="process").count() == 3
    # Batched reads: one goods-in GET by note IDs, one by the three credits (not one per credit).
    paths = [r["path"] for r in world.bp.control.requests() if "goods-in" in r["path"]][-2:]
    assert paths[0].startswith("/warehouse-service/order/*/goods-note/goods-in/")
    assert "," in paths[1] or "-" in paths[1].split("/")[3]


def test_the_same_event_three_times_processes_once(
    world, eager, django_capture_on_commit_callbacks
):
    _, loop_return = returned(world, (f"E-{world.bp.code}", 1))
    world.sync()
    [binding] = credits_of(world, loop_return)
    note = world.bp.control.receive(binding.credit_id)["goodsNoteId"]
    same = event_body(world.connection, "goods-in-note.created", [note], "2026-11-23T10:20:41.691Z")
    for _ in range(3):  # a QoS-1 redelivery: identical body
        assert post(world.connection, same, django_capture_on_commit_callbacks).status_code == 202
    for _ in range(2):  # the same change announced again (another raisedOn)
        body = event_body(world.connection, "goods-in-note.created", [note])
        assert post(world.connection, body, django_capture_on_commit_callbacks).status_code == 202

    statuses = list(WebhookEvent.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["processed", "duplicate", "duplicate", "ignored", "ignored"]
    assert "already processed" in WebhookEvent.objects.order_by("pk").last().error
    assert world.loop.actions_for(loop_return["id"]).count("process") == 1
    assert rma_of(world, loop_return).status == "processed"


@pytest.mark.parametrize("status_first", [True, False])
def test_out_of_order_deliveries_reach_the_same_state(
    world, eager, django_capture_on_commit_callbacks, status_first
):
    world.connection.received_status_id = 12  # "Goods received" in the sandbox
    world.connection.save()
    _, loop_return = returned(world, (f"F-{world.bp.code}", 2))
    world.sync()
    [binding] = credits_of(world, loop_return)
    # Both changes happened in Brightpearl; their webhooks arrive in either order.
    note = world.bp.control.receive(binding.credit_id)["goodsNoteId"]
    world.bp.control.set_order_status(binding.credit_id, 12)
    bodies = [
        event_body(world.connection, "order.modified.order-status", [binding.credit_id]),
        event_body(world.connection, "goods-in-note.created", [note]),
    ]
    for body in bodies if status_first else bodies[::-1]:
        assert post(world.connection, body, django_capture_on_commit_callbacks).status_code == 202

    rma = rma_of(world, loop_return)
    assert rma.status == "processed"
    assert not rma.flagged
    assert rma.lines.get().quantity_received == 2
    assert world.loop.actions_for(loop_return["id"]).count("process") == 1
    assert sorted(WebhookEvent.objects.values_list("status", flat=True)) == [
        "ignored",
        "processed",
    ]


def test_partial_receipt_by_webhook_then_the_rest(world, eager, django_capture_on_commit_callbacks):
    _, loop_return = returned(world, (f"G-{world.bp.code}", 3))
    world.sync()
    [binding] = credits_of(world, loop_return)
    row = binding.row_map[str(rma_of(world, loop_return).lines.get().pk)][0]
    for quantity, status in ((1, "partially_received"), (2, "processed")):
        note = world.bp.control.receive(
            binding.credit_id, rows=[{"rowId": row, "quantity": quantity}]
        )["goodsNoteId"]
        body = event_body(world.connection, "goods-in-note.created", [note])
        post(world.connection, body, django_capture_on_commit_callbacks)
        assert rma_of(world, loop_return).status == status


def test_events_about_orders_that_are_not_ours_are_ignored(
    world, eager, django_capture_on_commit_callbacks
):
    sale, _ = returned(world, (f"H-{world.bp.code}", 1))
    world.sync()
    bodies = [
        # A status change of the original sales order (not a credit we made).
        event_body(world.connection, "order.modified.order-status", [sale.order_id]),
        # A goods-in note that does not exist (or that this app cannot see).
        event_body(world.connection, "goods-in-note.created", [987654]),
    ]
    for body in bodies:
        assert post(world.connection, body, django_capture_on_commit_callbacks).status_code == 202
    events = list(WebhookEvent.objects.order_by("pk"))
    assert [e.status for e in events] == ["ignored", "ignored"]
    assert "not sales credits made by this connection" in events[0].error
    assert "no goods-in note 987654" in events[1].error
    assert not SyncRun.objects.filter(trigger=SyncRun.Trigger.WEBHOOK).exists()


def test_goods_in_note_of_another_order_is_ignored(
    world, eager, django_capture_on_commit_callbacks
):
    """A goods-in note exists, but against a credit another integration made."""
    sale, _ = returned(world, (f"I-{world.bp.code}", 1))
    product = world.products[f"I-{world.bp.code}"]
    other = world.bp.control.seed(
        orders=[
            {
                "orderTypeCode": "SC",
                "contactId": world.contact_id,
                "parentOrderId": sale.order_id,
                "warehouseId": 2,
                "rows": [{"productId": product, "quantity": 1, "net": "10.00", "tax": "2.00"}],
            }
        ]
    )["orders"][0]
    note = world.bp.control.receive(other)["goodsNoteId"]
    body = event_body(world.connection, "goods-in-note.created", [note])
    post(world.connection, body, django_capture_on_commit_callbacks)
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.IGNORED
    assert f"order(s) {other} are not sales credits" in event.error


def test_quarantine_release_webhook_turns_quarantined_units_into_restocked_ones(
    world, eager, django_capture_on_commit_callbacks
):
    sku = f"J-{world.bp.code}"
    _, loop_return = returned(world, (sku, 2))
    world.sync()
    [binding] = credits_of(world, loop_return)
    world.bp.control.receive(binding.credit_id, quarantine=True)
    world.sync()
    line = rma_of(world, loop_return).lines.get()
    assert (line.quantity_received, line.quantity_restocked) == (2, 0)
    release = world.bp.control.quarantine_release(2, world.products[sku], 1)
    body = event_body(world.connection, "quarantine-release.created", [release["id"]])
    post(world.connection, body, django_capture_on_commit_callbacks)
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED, event.error
    line.refresh_from_db()
    assert (line.quantity_received, line.quantity_restocked) == (2, 1)


def test_quarantine_release_with_nothing_held_is_ignored_with_the_reason(
    world, eager, django_capture_on_commit_callbacks
):
    body = event_body(world.connection, "quarantine-release.created", [5])
    post(world.connection, body, django_capture_on_commit_callbacks)
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.IGNORED
    assert "no return of this connection holds quarantined units" in event.error


def test_disabled_connection_refuses_with_409(world):
    world.connection.enabled = False
    world.connection.save()
    response = post(world.connection, event_body(world.connection, "goods-in-note.created", [1]))
    assert response.status_code == 409
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.REJECTED


# --- the platform call happens once, however executions interleave ---------------------------


def test_two_executions_with_the_same_stale_binding_process_once(world, monkeypatch):
    from returns.platforms.loop.adapter import LoopPlatform

    _, loop_return = returned(world, (f"K-{world.bp.code}", 1))
    world.sync()
    [binding] = credits_of(world, loop_return)
    world.bp.control.receive(binding.credit_id)
    calls, real_process = [], LoopPlatform.process
    monkeypatch.setattr(
        LoopPlatform, "process", lambda self, rma: calls.append(rma.pk) or real_process(self, rma)
    )
    # Both executions loaded the binding before either processed it.
    first, second = (SalesCredit.objects.select_related("rma").get(pk=binding.pk) for _ in "ab")
    update_receipts(SyncContext(connection=world.connection), [first])
    update_receipts(SyncContext(connection=world.connection), [second])
    assert calls == [binding.rma_id]  # called once (Loop would refuse a second call anyway)
    assert not SyncEvent.objects.filter(kind="process", outcome="failed").exists()
    assert world.loop.actions_for(loop_return["id"]).count("process") == 1
    assert rma_of(world, loop_return).status == "processed"
    # The polling path agrees: nothing left to do, nothing sent again.
    world.sync()
    assert world.loop.actions_for(loop_return["id"]).count("process") == 1


def test_platform_refusal_gives_the_claim_back(world, monkeypatch):
    _, loop_return = returned(world, (f"L-{world.bp.code}", 1))
    world.sync()
    [binding] = credits_of(world, loop_return)
    world.bp.control.receive(binding.credit_id)
    from returns.platforms.errors import Refused
    from returns.platforms.loop.adapter import LoopPlatform

    def refuse(self, rma):
        raise Refused("Loop says no")

    monkeypatch.setattr(LoopPlatform, "process", refuse)
    world.sync()
    binding.refresh_from_db()
    assert binding.processed_at is None
    monkeypatch.undo()
    world.sync()
    binding.refresh_from_db()
    assert binding.processed_at is not None
    assert rma_of(world, loop_return).status == "processed"


# --- the task: retries transient errors, never a 4xx, ends recorded --------------------------


def stored_event(connection, **fields) -> WebhookEvent:
    defaults = {
        "source": WebhookEvent.Source.BRIGHTPEARL,
        "event": "goods-in-note.created",
        "resource_ids": "1",
    }
    return WebhookEvent.objects.create(connection=connection, **(defaults | fields))


def test_task_retries_transient_errors_then_records_failed(monkeypatch, eager):
    event = stored_event(ConnectionFactory())
    calls = []

    def flaky(ev):
        calls.append(ev.pk)
        raise ServerError("Brightpearl 502", status=502)

    monkeypatch.setattr(brightpearl_events, "process_event", flaky)
    process_inbound_event.delay(event.pk)  # eager: each short retry runs at once, eta ignored
    event.refresh_from_db()
    # A backoff longer than a broker countdown waits in the database, not in Redis…
    assert len(calls) < max_attempts() and event.status == WebhookEvent.Status.RECEIVED
    assert event.next_attempt_at > timezone.now() + timedelta(seconds=100)
    while event.status == WebhookEvent.Status.RECEIVED:
        # …and housekeeping queues it once it is due.
        WebhookEvent.objects.filter(pk=event.pk).update(
            next_attempt_at=timezone.now() - timedelta(hours=1)
        )
        redispatch_inbound_events.delay()
        event.refresh_from_db()
    assert len(calls) == max_attempts()
    assert event.status == WebhookEvent.Status.FAILED
    assert "Gave up after 6 attempts" in event.error and "502" in event.error
    assert event.attempts == len(calls)


def test_task_never_retries_a_4xx(monkeypatch, eager):
    event = stored_event(ConnectionFactory())
    calls = []

    def refused(ev):
        calls.append(ev.pk)
        raise ValidationError("bad request", status=400)

    monkeypatch.setattr(brightpearl_events, "process_event", refused)
    process_inbound_event.delay(event.pk)
    event.refresh_from_db()
    assert calls == [event.pk]
    assert event.status == WebhookEvent.Status.FAILED
    assert "status=400" in event.error


def test_task_skips_events_no_longer_received():
    event = stored_event(ConnectionFactory(), status=WebhookEvent.Status.PROCESSED)
    assert process_inbound_event.apply((event.pk,)).get() == "processed"
    assert process_inbound_event.apply((event.pk + 999,)).get() == ""


def test_backoff_is_capped(settings):
    settings.CELERY_TASK_RETRY_BACKOFF_MAX = 600
    delays = [backoff_delay(n) for n in range(1, 14)]
    assert all(d <= 600 for d in delays) and delays[0] <= 30
    assert min(delays[-3:]) >= 300


def test_transient_error_inside_the_receipt_step_is_raised_for_a_retry(world):
    """update_receipts records a failed read and carries on; the webhook path still retries."""
    _, loop_return = returned(world, (f"M-{world.bp.code}", 1))
    world.sync()
    [binding] = credits_of(world, loop_return)
    note = world.bp.control.receive(binding.credit_id)["goodsNoteId"]
    world.bp.control.add_fault(
        rf"^/warehouse-service/order/{binding.credit_id}/goods-note/goods-in",
        "error",
        method="GET",
        status=500,
        times=4,  # the client's own retries fail too
    )
    event = stored_event(world.connection, resource_ids=str(note))
    with pytest.raises(ServerError):
        brightpearl_events.process_event(event)
    run = SyncRun.objects.get(trigger=SyncRun.Trigger.WEBHOOK)
    assert run.status == SyncRun.Status.PARTIAL
    assert run.events.filter(outcome="failed").exists()
    # The fault is spent: the retry succeeds.
    assert brightpearl_events.process_event(event).status == WebhookEvent.Status.PROCESSED
    assert rma_of(world, loop_return).status == "processed"


def test_broker_failure_leaves_the_event_due_so_a_redelivery_processes_it(
    monkeypatch, django_capture_on_commit_callbacks
):
    connection = ConnectionFactory()
    body = event_body(connection, "goods-in-note.created", [5], "2026-11-23T10:00:00.5Z")

    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(drain_inbound_events, "delay", broker_down)
    monkeypatch.setattr(process_inbound_event, "delay", broker_down)
    with pytest.raises(ConnectionError):  # the sender sees a 5xx
        post(connection, body, django_capture_on_commit_callbacks)
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.RECEIVED
    assert "Could not queue processing" in event.error
    # The refused publish left no wake-up marker behind: the next delivery queues a drain.
    drains = []
    monkeypatch.setattr(drain_inbound_events, "delay", drains.append)
    other = event_body(connection, "goods-in-note.created", [6], "2026-11-23T10:00:01.5Z")
    assert post(connection, other, django_capture_on_commit_callbacks).status_code == 202
    assert drains == [connection.pk]
    queued = []
    monkeypatch.setattr(process_inbound_event, "delay", queued.append)
    # Brightpearl's redelivery (same body) is a duplicate, and the first delivery runs now.
    assert post(connection, body, django_capture_on_commit_callbacks).json()["duplicate"] is True
    assert queued == [event.pk]


# --- the connection a URL names is kept for a few seconds, never past a change saved here -----


def test_a_connection_disabled_or_given_a_new_secret_is_refused_at_once():
    connection = ConnectionFactory()
    first = event_body(connection, "goods-in-note.created", [7], "2026-11-23T10:00:00.7Z")
    assert post(connection, first).status_code == 202  # the route is now kept in this process
    old_secret = connection.webhook_secret

    connection.enabled = False
    connection.save()
    second = event_body(connection, "goods-in-note.created", [8], "2026-11-23T10:00:00.8Z")
    assert post(connection, second).status_code == 409

    connection.enabled, connection.webhook_secret = True, "a-new-secret-" + uuid.uuid4().hex
    connection.save()
    third = event_body(connection, "goods-in-note.created", [9], "2026-11-23T10:00:00.9Z")
    old_url = Client().post(
        url_for(connection, old_secret), data=third, content_type="application/json"
    )
    assert old_url.status_code == 404
    assert post(connection, third).status_code == 202
    assert list(
        WebhookEvent.objects.filter(connection=connection).order_by("pk").values_list("status")
    ) == [("received",), ("rejected",), ("received",)]


@pytest.mark.django_db(transaction=True)
def test_a_non_ascii_header_is_kept_as_the_sender_wrote_it(live_server):
    """Over real HTTP: a user agent sent as UTF-8 bytes is stored as that text (the WSGI server
    hands headers over as ISO-8859-1), and bytes that are not UTF-8 are escaped, not lost."""
    import requests

    connection = ConnectionFactory()
    for event_id, agent, stored in [
        ("501", "Lager/2.0 (Zürich, café)".encode(), "Lager/2.0 (Zürich, café)"),
        ("502", b"Broken/\xff", "Broken/\\xff"),
    ]:
        response = requests.post(
            live_server.url + url_for(connection),
            data=event_body(connection, "goods-in-note.created", event_id),
            headers={"Content-Type": "application/json", "User-Agent": agent},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        event = WebhookEvent.objects.get(pk=response.json()["received"])
        assert event.headers["User-Agent"] == stored
