"""Every typed operation of BrightpearlClient, over real HTTP against the Brightpearl sandbox."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from brightpearl import (
    BrightpearlClient,
    NotFoundError,
    PaymentMethodNotFoundError,
    PrivateAppAuth,
    StaffAuth,
    ValidationError,
)


def ctl(acct, method, path, body=None):
    """Call the sandbox control API for this account (contract: docs/contract-brightpearl.md)."""
    url = f"{acct.server_url}/_sandbox/{acct.code}{path}"
    resp = requests.request(method, url, json=body, timeout=10)
    assert resp.status_code < 300, resp.text
    return resp.json()


def make_client(acct, **kwargs):
    kwargs.setdefault("auth", PrivateAppAuth(acct.app_ref, acct.account_token))
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("retry_backoff", 0.01)
    kwargs.setdefault("max_throttle_wait", 0.2)
    return BrightpearlClient(acct.code, base_url_template=acct.api_url_template, **kwargs)


@pytest.fixture
def client(sandbox_account):
    with make_client(sandbox_account) as c:
        yield c


@pytest.fixture
def seeded(sandbox_account):
    """A customer, two products and one sales order with two rows."""
    created = ctl(
        sandbox_account,
        "POST",
        "/seed",
        {
            "contacts": [{"firstName": "Ada", "email": "ada@example.com"}],
            "products": [
                {"sku": "SHIRT-1", "name": "Nice shirt", "price": "10.00"},
                {"sku": "HAT-1", "name": "Hat", "price": "5.00"},
            ],
        },
    )
    contact_id = created["contacts"][0]
    orders = ctl(
        sandbox_account,
        "POST",
        "/seed",
        {
            "orders": [
                {
                    "orderTypeCode": "SO",
                    "contactId": contact_id,
                    "reference": "#1001",
                    "externalRef": "shop-1001",
                    "rows": [{"sku": "SHIRT-1", "quantity": 2}, {"sku": "HAT-1", "quantity": 1}],
                }
            ]
        },
    )
    return {
        "contact_id": contact_id,
        "product_ids": created["products"],
        "order_id": orders["orders"][0],
    }


def credit_payload(seeded, acct, external_ref="loop:return:1", **extra):
    shirt = seeded["product_ids"][0]
    payload = {
        "customer": {"id": seeded["contact_id"]},
        "ref": "RMA-1",
        "parentId": seeded["order_id"],
        "warehouseId": 2,
        "channelId": 1,
        "externalRef": external_ref,
        "installedIntegrationInstanceId": acct.installed_integration_instance_id,
        "priceListId": 2,
        "priceModeCode": "INC",
        "currency": {"code": "GBP"},
        "rows": [
            {
                "productId": shirt,
                "name": "Nice shirt",
                "quantity": "1",
                "taxCode": "T20",
                "net": "8.33",
                "tax": "1.67",
                "externalRef": "line-1",
            }
        ],
    }
    payload.update(extra)
    return payload


def test_account_configuration_and_counters(client):
    config = client.get_account_configuration()
    assert config["configuration"]["newSalesCreditStatusId"] == "10"
    assert client.request_count == 1
    assert client.last_ruid


def test_staff_token_auth(sandbox_account):
    staff = make_client(
        sandbox_account, auth=StaffAuth(sandbox_account.app_ref, sandbox_account.staff_token)
    )
    assert staff.get_warehouses([2])[0]["id"] == 2


def test_orders_and_sales_credits(client, seeded, sandbox_account):
    order = client.get_orders([seeded["order_id"]])[0]
    assert order["id"] == seeded["order_id"]
    assert order["orderTypeCode"] == "SO"
    assert client.get_orders([999_999]) == []

    credit_id = client.create_sales_credit(credit_payload(seeded, sandbox_account))
    credits = client.get_sales_credits([credit_id])
    assert credits[0]["id"] == credit_id
    assert credits[0]["parentId"] == seeded["order_id"]
    # 207: one found, one missing.
    partial = client.get_sales_credits([credit_id, 999_998])
    assert [c["id"] for c in partial] == [credit_id]
    # Order GET of the credit works too (any order type).
    assert client.get_orders([credit_id])[0]["orderTypeCode"] == "SC"


def test_sales_credit_duplicate_rule(client, seeded, sandbox_account):
    payload = credit_payload(seeded, sandbox_account, external_ref="loop:return:dup")
    first = client.create_sales_credit(payload)
    second = client.create_sales_credit(payload)
    assert second == first
    found = client.find_sales_credits_by_external_ref(
        "loop:return:dup",
        installed_integration_instance_id=sandbox_account.installed_integration_instance_id,
    )
    assert [row["orderId"] for row in found] == [first]
    state = ctl(sandbox_account, "GET", "/state")
    assert sum(1 for o in state["orders"] if o.get("orderTypeCode") == "SC") == 1


def test_sales_credit_validation_error(client, seeded, sandbox_account):
    payload = credit_payload(seeded, sandbox_account)
    payload.pop("customer")
    with pytest.raises(ValidationError) as info:
        client.create_sales_credit(payload)
    assert info.value.status == 400
    assert info.value.codes
    assert info.value.ruid


def test_search_orders(client, seeded, sandbox_account):
    credit_id = client.create_sales_credit(credit_payload(seeded, sandbox_account))
    rows = list(client.search_orders(orderTypeId=3, parentOrderId=seeded["order_id"]))
    assert [r["orderId"] for r in rows] == [credit_id]
    assert rows[0]["externalRef"] == "loop:return:1"
    assert list(client.search_orders(externalRef="nope")) == []
    assert [r["orderId"] for r in client.search_orders(customerRef="#1001")] == [seeded["order_id"]]
    assert list(client.search_orders(updatedOn=("2000-01-01T00:00:00Z", None), orderTypeId=[1]))


def test_status_note_and_close(client, seeded, sandbox_account):
    credit_id = client.create_sales_credit(credit_payload(seeded, sandbox_account))
    statuses = client.get_order_statuses()
    sc_status = next(s for s in statuses if s["orderTypeCode"] == "SC" and s["statusId"] != 10)
    assert client.get_order_statuses([sc_status["statusId"]])[0]["name"] == sc_status["name"]
    client.update_order_status(credit_id, sc_status["statusId"], note_text="Received at warehouse")
    assert (
        client.get_orders([credit_id])[0]["orderStatus"]["orderStatusId"] == sc_status["statusId"]
    )
    note_id = client.add_order_note(credit_id, "Created from Loop RMA 1")
    assert isinstance(note_id, int) and note_id > 0
    with pytest.raises(ValidationError):
        client.update_order_status(credit_id, 999)
    client.close_sales_credit(credit_id)
    client.close_sales_credit(credit_id, tax_date="2026-01-12T10:00:00+00:00")


def test_reference_data(client):
    assert {c["id"] for c in client.get_channels()} >= {1, 2}
    assert client.get_channels([1])[0]["name"]
    assert {w["id"] for w in client.get_warehouses()} >= {2, 3}
    locations = client.get_warehouse_locations(2)
    assert len(locations) >= 2
    quarantine = client.get_quarantine_location(2)
    assert quarantine["groupingA"] == "QUARANTINE"
    assert client.get_warehouse_locations(2, [quarantine["id"]])[0]["id"] == quarantine["id"]
    assert {p["id"] for p in client.get_price_lists()} >= {1, 2}
    assert client.get_price_lists([2])[0]["id"] == 2
    nominals = client.get_nominal_codes()
    assert any(n["code"] == "1200" for n in nominals)
    assert client.get_nominal_codes([nominals[0]["id"]])[0]["id"] == nominals[0]["id"]
    banks = list(client.search_nominal_codes(bank=True))
    assert banks and all(str(b.get("bank")).lower() == "true" for b in banks)
    methods = client.get_payment_methods()
    assert {m["code"] for m in methods} >= {"BANK", "PAYPAL", "CARD"}


def test_products(client, seeded):
    products = client.get_products(seeded["product_ids"])
    assert {p["id"] for p in products} == set(seeded["product_ids"])
    rows = list(client.search_products(SKU="SHIRT-1"))
    assert [r["productId"] for r in rows] == [seeded["product_ids"][0]]
    found = client.find_products_by_sku(["SHIRT-1", "HAT-1", "NOPE", "SHIRT-1"])
    assert [r["productId"] for r in found["SHIRT-1"]] == [seeded["product_ids"][0]]
    assert [r["productId"] for r in found["HAT-1"]] == [seeded["product_ids"][1]]
    assert found["NOPE"] == []


def test_resolve_payment_method_code(client):
    assert client.resolve_payment_method_code("1210", "USD") == "PAYPAL"
    assert client.resolve_payment_method_code(1200, "gbp") == "BANK"
    with pytest.raises(PaymentMethodNotFoundError):
        client.resolve_payment_method_code("1200", "USD")
    with pytest.raises(PaymentMethodNotFoundError):
        client.resolve_payment_method_code("4000", "GBP")  # not a bank account


def test_customer_payment_and_duplicate_rule(client, seeded, sandbox_account):
    credit_id = client.create_sales_credit(credit_payload(seeded, sandbox_account))
    payment = {
        "transactionRef": "loop-refund-1",
        "paymentMethodCode": "CARD",
        "paymentType": "PAYMENT",
        "orderId": credit_id,
        "currencyIsoCode": "GBP",
        "amountPaid": "10.00",
        "paymentDate": "2026-01-12T10:00:00+00:00",
    }
    payment_id = client.create_customer_payment(payment)
    assert isinstance(payment_id, int)
    before = client.request_count
    with pytest.raises(ValidationError) as info:
        client.create_customer_payment(payment)
    assert client.request_count == before + 1  # a refused POST is not retried
    assert info.value.codes
    rows = list(client.search_customer_payments(orderId=credit_id))
    assert [(r["paymentId"], r["transactionRef"]) for r in rows] == [(payment_id, "loop-refund-1")]


def test_goods_in_notes_and_movements(client, seeded, sandbox_account):
    credit_id = client.create_sales_credit(credit_payload(seeded, sandbox_account))
    credit = client.get_sales_credits([credit_id])[0]
    row_id = credit["rows"][0]["id"]
    received = ctl(sandbox_account, "POST", f"/credits/{credit_id}/receive", {})
    note_id = received["goodsNoteId"]

    by_order = client.get_goods_in_notes(order_ids=[credit_id])
    assert list(by_order) == [note_id]
    assert by_order[note_id]["goodsMoved"][0]["purchaseOrderRowId"] == row_id
    by_note = client.get_goods_in_notes(note_ids=[note_id])
    assert list(by_note) == [note_id]
    assert client.get_goods_in_notes(order_ids=[credit_id], note_ids=[note_id]) == by_order
    assert client.get_goods_in_notes(order_ids=[]) == {}
    with pytest.raises(ValueError):
        client.get_goods_in_notes()

    moves = list(client.search_goods_movements(orderId=credit_id))
    assert moves and all(m["goodsNoteId"] == note_id for m in moves)


def test_create_goods_in_note(client, seeded, sandbox_account):
    credit_id = client.create_sales_credit(credit_payload(seeded, sandbox_account))
    credit = client.get_sales_credits([credit_id])[0]
    row = credit["rows"][0]
    default_location = next(
        loc for loc in client.get_warehouse_locations(2) if loc["groupingA"] != "QUARANTINE"
    )
    note_id = client.create_goods_in_note(
        credit_id,
        {
            "transfer": False,
            "warehouseId": 2,
            "receivedOn": "2026-01-10T14:48:56.000+00:00",
            "userBatchReference": f"RMA-{credit_id}",
            "goodsMoved": [
                {
                    "productId": row["productId"],
                    "purchaseOrderRowId": row["id"],
                    "quantity": 1,
                    "destinationLocationId": default_location["id"],
                    "productValue": {"currency": "GBP", "value": 5.0},
                }
            ],
        },
    )
    assert note_id in client.get_goods_in_notes(order_ids=[credit_id])


class _Receiver:
    """Collects webhook deliveries from the sandbox."""

    def __init__(self):
        self.calls = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.calls.append((self.path, self.rfile.read(length).decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_webhooks_subscribe_list_simulate_delete(client, sandbox_account):
    receiver = _Receiver()
    try:
        payload = {
            "subscribeTo": "goods-in-note.created",
            "httpMethod": "POST",
            "uriTemplate": receiver.url + "/hooks/brightpearl/secret-token",
            "bodyTemplate": '{"accountCode":"${account-code}","id":"${resource-id}",'
            '"fullEvent":"${full-event}"}',
            "contentType": "application/json",
            "idSetAccepted": True,
            "qualityOfService": 1,
        }
        webhook_id = client.create_webhook(payload)
        listed = client.list_webhooks()
        assert [w["id"] for w in listed] == [webhook_id]
        assert client.list_webhooks([webhook_id])[0]["subscribeTo"] == "goods-in-note.created"

        client.simulate_webhook(webhook_id, {"${resource-id}": "1-3,7"})
        deadline = time.monotonic() + 5
        while not receiver.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.calls, "no webhook delivery arrived"
        path, body = receiver.calls[0]
        assert path == "/hooks/brightpearl/secret-token"
        delivered = json.loads(body)
        assert delivered["id"] == "1-3,7"
        assert delivered["accountCode"] == sandbox_account.code

        with pytest.raises(ValidationError) as info:
            client.create_webhook(dict(payload, subscribeTo="sales-credit.created"))
        assert "INTC-064" in info.value.codes

        client.delete_webhook(webhook_id)
        assert client.list_webhooks() == []
        with pytest.raises(NotFoundError):
            client.delete_webhook(webhook_id)
    finally:
        receiver.close()
