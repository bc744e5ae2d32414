"""Webhooks in the sandbox: subscriptions, firing over real HTTP, ID sets, retries, simulate."""

import json

from tests.brightpearl.test_sandbox_warehouse import make_credit

BODY = (
    '{"accountCode":"${account-code}","resourceType":"${resource-type}","id":"${resource-id}",'
    '"lifecycleEvent":"${lifecycle-event}","fullEvent":"${full-event}","raisedOn":"${raised-on}",'
    '"brightpearlVersion":"${brightpearl-version}"}'
)


def subscribe(account, receiver, event, *, id_set=True, qos=1, method="POST"):
    body = {
        "subscribeTo": event,
        "httpMethod": method,
        "uriTemplate": receiver.url + "/hooks/secret-token/${resource-type}/${resource-id}",
        "idSetAccepted": id_set,
        "qualityOfService": qos,
    }
    if method in ("POST", "PUT"):
        body |= {"bodyTemplate": BODY, "contentType": "application/json"}
    response = account.post("/integration-service/webhook", body)
    assert response.status_code == 200, response.text
    return response.json()["response"]


def test_subscribe_list_delete(sandbox_account, webhook_receiver):
    first = subscribe(sandbox_account, webhook_receiver, "goods-in-note.created")
    second = subscribe(
        sandbox_account, webhook_receiver, "order.modified.order-status", method="GET"
    )
    listed = sandbox_account.get("/integration-service/webhook").json()["response"]
    assert [w["id"] for w in listed] == [first, second]
    assert listed[0]["subscribeTo"] == "goods-in-note.created"
    assert listed[0]["idSetAccepted"] is True
    one = sandbox_account.get(f"/integration-service/webhook/{second}").json()["response"]
    assert [w["id"] for w in one] == [second]
    assert sandbox_account.delete(f"/integration-service/webhook/{first}").json() == {}
    missing = sandbox_account.delete(f"/integration-service/webhook/{first}")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "CMNC-404"


def test_unsubscribable_event_is_intc_064(sandbox_account, webhook_receiver):
    body = {
        "subscribeTo": "sales-credit.created",
        "httpMethod": "GET",
        "uriTemplate": webhook_receiver.url,
    }
    response = sandbox_account.post("/integration-service/webhook", body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "INTC-064"


def test_goods_in_fires_with_expanded_templates(sandbox_account, seeded_sale, webhook_receiver):
    subscribe(sandbox_account, webhook_receiver, "goods-in-note.created")
    credit_id, _ = make_credit(sandbox_account, seeded_sale)
    note = sandbox_account.control.receive(credit_id)
    received = webhook_receiver.wait_for(1)
    assert len(received) == 1
    delivery = received[0]
    assert delivery["method"] == "POST"
    assert delivery["path"] == f"/hooks/secret-token/goods-in-note/{note['goodsNoteId']}"
    body = json.loads(delivery["body"])
    assert body["accountCode"] == sandbox_account.code
    assert body["resourceType"] == "goods-in-note"
    assert body["id"] == str(note["goodsNoteId"])
    assert body["lifecycleEvent"] == "created"
    assert body["fullEvent"] == "goods-in-note.created"
    assert body["raisedOn"].startswith("20")
    assert body["brightpearlVersion"]


def test_status_change_via_api_fires_order_status_event(
    sandbox_account, seeded_sale, webhook_receiver
):
    subscribe(sandbox_account, webhook_receiver, "order.modified.order-status", method="GET")
    credit_id, _ = make_credit(sandbox_account, seeded_sale)
    sandbox_account.put(f"/order-service/order/{credit_id}/status", {"orderStatusId": 11})
    sandbox_account.control.set_order_status(credit_id, 12)
    received = webhook_receiver.wait_for(2)
    assert [r["path"] for r in received] == [f"/hooks/secret-token/order/{credit_id}"] * 2
    # A refused status change fires nothing.
    sandbox_account.put(f"/order-service/order/{credit_id}/status", {"orderStatusId": 999})
    sandbox_account.control.wait_for_webhooks()
    assert len(webhook_receiver.received) == 2


def test_quarantine_release_event(sandbox_account, seeded_sale, webhook_receiver):
    subscribe(sandbox_account, webhook_receiver, "quarantine-release.created")
    credit_id, _ = make_credit(sandbox_account, seeded_sale)
    sandbox_account.control.receive(credit_id, quarantine=True)
    release = sandbox_account.control.quarantine_release(2, seeded_sale.product_ids[0], 2)
    body = webhook_receiver.wait_for(1) and webhook_receiver.json_bodies()[0]
    assert body["fullEvent"] == "quarantine-release.created"
    assert body["id"] == str(release["id"])


def test_simulate_with_id_set_and_one_call_per_id(sandbox_account, webhook_receiver):
    with_set = subscribe(sandbox_account, webhook_receiver, "goods-in-note.created")
    per_id = subscribe(sandbox_account, webhook_receiver, "goods-in-note.created", id_set=False)
    test_data = {"testData": {"${resource-id}": "1-3,99"}}
    response = sandbox_account.post(f"/integration-service/webhook/{with_set}/simulate", test_data)
    assert response.status_code == 200
    assert [b["id"] for b in webhook_receiver.wait_for(1) and webhook_receiver.json_bodies()] == [
        "1-3,99"
    ]
    sandbox_account.post(f"/integration-service/webhook/{per_id}/simulate", test_data)
    webhook_receiver.wait_for(5)
    assert [b["id"] for b in webhook_receiver.json_bodies()] == ["1-3,99", "1", "2", "3", "99"]
    too_many = {"testData": {"${resource-id}": "1-11"}}
    assert (
        sandbox_account.post(
            f"/integration-service/webhook/{with_set}/simulate", too_many
        ).status_code
        == 400
    )


def test_qos1_retries_on_5xx_and_gives_up_on_4xx(sandbox_account, webhook_receiver):
    hook = subscribe(sandbox_account, webhook_receiver, "goods-in-note.created")
    webhook_receiver.statuses = [500, 503, 200]
    sandbox_account.post(f"/integration-service/webhook/{hook}/simulate", {})
    received = webhook_receiver.wait_for(3)
    assert [r["status"] for r in received] == [500, 503, 200]
    sandbox_account.control.wait_for_webhooks()
    outcomes = [d["outcome"] for d in sandbox_account.control.webhook_deliveries()]
    assert outcomes == ["retrying", "retrying", "delivered"]

    webhook_receiver.statuses = [400]
    sandbox_account.post(f"/integration-service/webhook/{hook}/simulate", {})
    sandbox_account.control.wait_for_webhooks()
    assert len(webhook_receiver.received) == 4
    assert sandbox_account.control.webhook_deliveries()[-1]["outcome"] == "failed"


def test_qos0_does_not_retry_a_500(sandbox_account, webhook_receiver):
    hook = subscribe(sandbox_account, webhook_receiver, "goods-in-note.created", qos=0)
    webhook_receiver.statuses = [500]
    sandbox_account.post(f"/integration-service/webhook/{hook}/simulate", {})
    sandbox_account.control.wait_for_webhooks()
    assert len(webhook_receiver.received) == 1


def test_connection_error_is_retried_then_given_up(sandbox_account):
    body = {
        "subscribeTo": "goods-in-note.created",
        "httpMethod": "GET",
        "uriTemplate": "http://127.0.0.1:9/unreachable/${resource-id}",
        "idSetAccepted": True,
        "qualityOfService": 1,
    }
    hook = sandbox_account.post("/integration-service/webhook", body).json()["response"]
    sandbox_account.post(f"/integration-service/webhook/{hook}/simulate", {})
    sandbox_account.control.wait_for_webhooks()
    deliveries = sandbox_account.control.webhook_deliveries()
    assert len(deliveries) > 1
    assert deliveries[-1]["outcome"] == "failed"
    assert deliveries[0]["error"]


def test_prefix_subscription_receives_more_specific_events(
    sandbox_account, seeded_sale, webhook_receiver
):
    subscribe(sandbox_account, webhook_receiver, "order.modified")
    credit_id, _ = make_credit(sandbox_account, seeded_sale)
    sandbox_account.put(f"/order-service/order/{credit_id}/status", {"orderStatusId": 11})
    body = webhook_receiver.wait_for(1) and webhook_receiver.json_bodies()[0]
    assert body["fullEvent"] == "order.modified.order-status"
    assert body["id"] == str(credit_id)


def test_webhook_chaos_delivers_each_event_three_times_in_no_fixed_order(
    sandbox_account, seeded_sale, webhook_receiver
):
    """QoS 1 is at-least-once and Brightpearl promises no order: model duplicates and
    reordering, so a receiver is tested against them."""
    subscribe(sandbox_account, webhook_receiver, "goods-in-note.created")
    sandbox_account.control.set_webhook_chaos(copies=3, max_delay=2.0, seed=3)
    credit_id, row_ids = make_credit(sandbox_account, seeded_sale)
    notes = [
        str(
            sandbox_account.control.receive(credit_id, rows=[{"rowId": row_ids[0], "quantity": 1}])[
                "goodsNoteId"
            ]
        )
        for _ in range(2)
    ]
    bodies = [json.loads(r["body"])["id"] for r in webhook_receiver.wait_for(6, timeout=10)]
    assert sorted(bodies) == sorted(notes * 3)
    assert bodies != sorted(bodies, key=notes.index)  # interleaved, not in the order raised
    assert sandbox_account.control.wait_for_webhooks(5)
    sandbox_account.control.set_webhook_chaos()  # off again: one delivery per event
    sandbox_account.control.receive(credit_id)
    assert len(webhook_receiver.wait_for(7)) == 7
    assert sandbox_account.control.wait_for_webhooks(5)
    assert len(webhook_receiver.received) == 7


def test_webhook_chaos_refuses_bad_settings(sandbox_account):
    from brightpearl.sandbox import SandboxControlError

    for copies, delay in ((0, 0.0), (11, 0.0), (2, -1.0)):
        try:
            sandbox_account.control.set_webhook_chaos(copies=copies, max_delay=delay)
        except SandboxControlError as exc:
            assert exc.status == 400
        else:
            raise AssertionError(f"copies={copies} maxDelay={delay} was accepted")
