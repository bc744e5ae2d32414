"""ReturnGO adapter against the ReturnGO sandbox over real HTTP."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from returns.intake import upsert_rma
from returns.platforms import get_platform
from returns.platforms.base import ReceiptLine
from returns.platforms.errors import (
    AuthError,
    BudgetExhausted,
    NotFound,
    ValidationError,
    WebhookParseError,
)
from returns.platforms.returngo.client import (
    DailyCallBudget,
    comment_body,
    rma_id,
    status_update_body,
)

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def make(sandbox, **options):
    return get_platform(
        "returngo",
        api_key=sandbox.api_key,
        shop_name=sandbox.shop_name,
        base_url=sandbox.url,
        backoff=0.2,
        **options,
    )


def test_poll_pages_with_cursor_and_fetches_details(returngo_sandbox):
    for n in range(5):
        returngo_sandbox.add_rma(
            order_name=f"#{2000 + n}", items=[{"sku": "TEE", "quantity": 2, "price": "20.00"}]
        )
    adapter = make(returngo_sandbox)
    summaries = list(adapter.client._pages("/rmas", "rmas", {"pagesize": 2}))
    assert len(summaries) == 5
    feed = adapter.fetch_changed(HOUR_AGO)
    rmas = list(feed)
    assert feed.count == 5 and feed.max_updated_at == max(r.updated_at for r in rmas)
    assert all(len(r.lines) == 2 for r in rmas)  # one item per unit
    # one list call (pagesize 500) plus one detail call per RMA
    assert adapter.client.calls == 3 + 1 + 5


def test_poll_filters_on_updated_at(returngo_sandbox, returngo):
    old = datetime.now(UTC) - timedelta(days=3)
    returngo_sandbox.add_rma(order_name="#OLD", created_at=old)
    returngo_sandbox.add_rma(order_name="#NEW")
    assert [r.order_name for r in returngo.fetch_changed(HOUR_AGO)] == ["#NEW"]
    until = datetime.now(UTC) - timedelta(days=2)
    assert [r.order_name for r in returngo.fetch_changed(old - timedelta(hours=1), until)] == [
        "#OLD"
    ]


def test_money_objects_and_aggregation(connection, returngo_sandbox, returngo):
    returngo_sandbox.add_rma(
        currency="EUR",
        shop_currency="USD",
        exchange_rate="1.10",
        items=[
            {
                "sku": "JEANS",
                "quantity": 2,
                "price": "50.00",
                "tax": "10.00",
                "tax_included": True,
                "restocking_fee": "5.00",
                "shipment_fee": "3.00",
            }
        ],
    )
    (neutral,) = list(returngo.fetch_changed(HOUR_AGO))
    assert neutral.currency == "EUR"
    assert neutral.rma_number == "RMA1001" and neutral.external_id == "1001"
    rma, _ = upsert_rma(connection, neutral)
    line = rma.lines.get()
    assert (line.quantity, line.unit_price, line.tax, line.tax_included) == (
        2,
        Decimal("50"),
        Decimal("20"),
        True,
    )
    assert (line.restocking_fee, line.shipment_fee) == (Decimal("10"), Decimal("6"))
    assert rma.status == "approved" and not rma.flagged

    shop_side = make(returngo_sandbox, currency_side="shop").fetch("1001")
    assert shop_side.currency == "USD" and shop_side.lines[0].unit_price == Decimal("55")


def test_status_writes_and_idempotent_process(returngo_sandbox, returngo):
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    returngo.process(rid)
    assert returngo_sandbox.get_rma(rid)["rmaSummary"]["status"] == "Done"
    returngo.process(f"RMA{rid}")
    returngo.close(rid)  # Done → Canceled refused (400) but the RMA is already final: success
    statuses = [a["body"] for a in returngo_sandbox.actions if a["action"] == "status"]
    assert statuses == [status_update_body("Done")] * 2


def test_illegal_transition_is_a_validation_error(returngo_sandbox, returngo):
    rid = returngo_sandbox.add_rma(status="Pending")["rmaSummary"]["rmaId"]
    with pytest.raises(ValidationError) as info:
        returngo.process(rid)
    assert info.value.status == 400
    returngo.close(rid)
    assert returngo_sandbox.get_rma(rid)["rmaSummary"]["status"] == "Canceled"


def test_flag_and_note_are_comments(returngo_sandbox, returngo):
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    returngo.flag(rid, "Expected 2 × TEE, received <1>")
    returngo.add_note(rid, "Parcel damp")
    texts = [c["htmlText"] for c in returngo_sandbox.comments_for(rid)]
    assert texts == [
        "Flagged by Brightpearl connector: Expected 2 × TEE, received &lt;1&gt;",
        "Parcel damp",
    ]
    assert returngo_sandbox.actions[0]["body"] == comment_body(texts[0])
    assert returngo_sandbox.get_rma(rid)["rmaSummary"]["status"] == "Approved"


def test_mark_received_moves_shipments(returngo_sandbox, returngo):
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    lines = [ReceiptLine(sku="SKU-1", quantity_expected=1, quantity_received=1)]
    assert returngo.mark_received(rid, lines) is True
    record = returngo_sandbox.get_rma(rid)
    assert record["shipments"][0]["status"] == "Received"
    assert record["rmaSummary"]["status"] == "Received"
    assert returngo.mark_received(rid, lines) is True  # already received: no second write
    assert returngo_sandbox.actions_for(rid) == ["shipment"]
    no_shipment = returngo_sandbox.add_rma(shipment=False)["rmaSummary"]["rmaId"]
    assert returngo.mark_received(no_shipment, lines) is False


def test_refunds_from_transactions(connection, returngo_sandbox, returngo):
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    returngo_sandbox.add_transaction(rid, "12.50")
    returngo_sandbox.add_transaction(rid, "3.00", type="InvoicePayment")
    (refund,) = returngo.refunds(rid)
    assert (refund.amount, refund.currency, refund.status, refund.method) == (
        Decimal("12.5"),
        "USD",
        "Success",
        "RefundToPaymentMethod",
    )
    rma, _ = upsert_rma(connection, returngo.fetch(rid))
    assert rma.refunds.get().external_id == refund.external_id


def test_auth_shop_and_not_found(returngo_sandbox, returngo):
    with pytest.raises(NotFound):
        returngo.fetch("424242")
    bad_key = get_platform(
        "returngo",
        api_key="nope",
        shop_name=returngo_sandbox.shop_name,
        base_url=returngo_sandbox.url,
    )
    with pytest.raises(AuthError) as info:
        bad_key.fetch("1")
    assert info.value.status == 401
    bad_shop = get_platform(
        "returngo",
        api_key=returngo_sandbox.api_key,
        shop_name="other.myshopify.com",
        base_url=returngo_sandbox.url,
    )
    with pytest.raises(AuthError) as info:
        bad_shop.fetch("1")
    assert info.value.status == 403


def test_pagesize_is_required(returngo_sandbox):
    response = requests.get(
        returngo_sandbox.url + "/rmas",
        timeout=5,
        headers={"x-api-key": returngo_sandbox.api_key, "x-shop-name": returngo_sandbox.shop_name},
    )
    assert response.status_code == 400


def test_rate_limit_429_is_waited_out(returngo_sandbox, returngo):
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    returngo_sandbox.configure(rate_limit=[(3, 1.0)])
    for _ in range(6):
        returngo.fetch(rid)
    assert returngo.client.calls > 6
    assert returngo_sandbox.limiter.limits == [(3, 1.0)]


def test_daily_budget_refuses_before_sending(returngo_sandbox):
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    budget = DailyCallBudget(limit=5, write_reserve=2)
    adapter = make(returngo_sandbox, budget=budget)
    for _ in range(3):
        adapter.fetch(rid)
    with pytest.raises(BudgetExhausted):
        adapter.fetch(rid)  # reads stop at limit - reserve
    adapter.add_note(rid, "writes may use the reserve")
    adapter.add_note(rid, "last one")
    with pytest.raises(BudgetExhausted):
        adapter.add_note(rid, "over budget")
    sent = [p for m, p in returngo_sandbox.requests_seen if not p.startswith("/_sandbox")]
    assert len(sent) == 5


def test_daily_budget_resets_at_utc_midnight():
    now = [datetime(2026, 5, 1, 23, 59, tzinfo=UTC).timestamp()]
    budget = DailyCallBudget(limit=1, write_reserve=0, clock=lambda: now[0])
    budget.spend()
    with pytest.raises(BudgetExhausted):
        budget.spend()
    now[0] += 120
    budget.spend()
    assert budget.remaining == 0


# -- webhooks --------------------------------------------------------------------------------


def test_webhooks_go_to_the_secret_url(returngo_sandbox, returngo, webhook_receiver):
    secret_url = webhook_receiver.url + "/webhooks/returngo/7/s3cr3t-token/"
    returngo_sandbox.configure(webhook_url=secret_url)
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    returngo.process(rid)
    returngo_sandbox.wait_for_deliveries()
    received = webhook_receiver.received
    assert {d["path"] for d in received} == {"/webhooks/returngo/7/s3cr3t-token/"}
    events = sorted(json.loads(d["body"])["eventName"] for d in received)
    assert events == ["RMA_CREATED", "RMA_STATUS_UPDATED"]
    for delivery in received:
        assert returngo.verify_webhook(delivery["headers"], delivery["body"]) is True
        assert returngo.parse_webhook(delivery["body"]).external_id == rid


def test_fire_webhook_from_the_control_api(returngo_sandbox, webhook_receiver):
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    record = requests.post(
        returngo_sandbox.url + "/_sandbox/webhooks/fire",
        timeout=5,
        json={"rma_id": rid, "event": "RMA_STATUS_UPDATED", "url": webhook_receiver.url},
    ).json()
    assert record["status"] == 200
    assert json.loads(webhook_receiver.received[0]["body"])["rmaId"] == rid


def test_duplicate_and_out_of_order_webhooks(returngo_sandbox, returngo):
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    first = returngo_sandbox.webhook_body(rid, "RMA_STATUS_UPDATED")
    returngo_sandbox.set_status(rid, "Canceled", fire=False)
    second = returngo_sandbox.webhook_body(rid, "RMA_STATUS_UPDATED")
    assert returngo.parse_webhook(first) == returngo.parse_webhook(first)
    assert returngo.parse_webhook(first).dedupe_key != returngo.parse_webhook(second).dedupe_key
    event, external_id, _ = returngo.parse_webhook(first)  # arrives last
    assert (event, external_id) == ("RMA_STATUS_UPDATED", rid)
    assert returngo.fetch(external_id).platform_status == "Canceled"  # act on the re-fetch


@pytest.mark.parametrize(
    "body",
    [
        {"eventName": "RMA_CREATED", "rmaId": "RMA55"},
        {"eventName": "RMA_CREATED", "data": {"rmaId": 55}},
        {"eventName": "RMA_CREATED", "data": {"rmaSummary": {"rmaId": "55"}}},
        {"eventName": "RMA_CREATED", "rma_id": "55"},
    ],
)
def test_parse_webhook_finds_the_rma_id(returngo, body):
    event = returngo.parse_webhook(json.dumps(body).encode())
    assert (event.event_name, event.external_id) == ("RMA_CREATED", "55")
    assert event.dedupe_key.startswith("returngo:55:RMA_CREATED:sha256:")


@pytest.mark.parametrize("body", [b"nope", b"[1]", b'{"eventName":"REFUND_CREATED"}'])
def test_parse_webhook_rejects_unreadable_bodies(returngo, body):
    with pytest.raises(WebhookParseError):
        returngo.parse_webhook(body)


def test_rma_id_strips_prefix():
    assert rma_id("RMA1234") == "1234" and rma_id(1234) == "1234"


def test_destinations_are_not_published(returngo):
    assert returngo.list_destinations() == []


@pytest.mark.parametrize(
    "body",
    [
        {"error": "Invalid status transition Done -> Canceled"},
        {"errors": [{"message": "no"}]},
        {"errorMessage": "Internal"},
        {"success": False, "message": "htmlText is required"},
        {"message": "Forbidden"},
        {"rmaId": "1", "status": "Approved"},
    ],
)
def test_a_2xx_reply_that_says_no_is_a_refusal(body):
    from returns.platforms.errors import Refused
    from returns.platforms.returngo.client import read_write_reply

    with pytest.raises(Refused):
        read_write_reply(body, "set RMA status", expected_status="Done")


@pytest.mark.parametrize(
    "body", [None, "", {"rmaId": "1", "status": "Done"}, {"success": True}, {"shipmentId": "3"}]
)
def test_a_2xx_reply_that_says_yes_is_success(body):
    from returns.platforms.returngo.client import read_write_reply

    read_write_reply(body, "set RMA status", expected_status="Done")


def test_a_bare_429_is_waited_out(returngo_sandbox, returngo):
    returngo_sandbox.configure(throttle_next=2)
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    returngo.process(rid)
    assert returngo_sandbox.get_rma(rid)["rmaSummary"]["status"] == "Done"


def test_a_status_answer_after_the_client_timeout_is_settled_by_the_retry(returngo_sandbox):
    from returns.platforms.errors import TransportError

    returngo_sandbox.configure(slow_writes={"status": 1.5})
    impatient = get_platform(
        "returngo",
        api_key=returngo_sandbox.api_key,
        shop_name=returngo_sandbox.shop_name,
        base_url=returngo_sandbox.url,
        timeout=(2, 0.5),
    )
    rid = returngo_sandbox.add_rma()["rmaSummary"]["rmaId"]
    with pytest.raises(TransportError):
        impatient.process(rid)  # done at ReturnGO, unknown to us: not counted as done
    returngo_sandbox.configure(slow_writes={})
    impatient.process(rid)
    assert returngo_sandbox.get_rma(rid)["rmaSummary"]["status"] == "Done"
