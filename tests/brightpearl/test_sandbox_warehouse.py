"""Warehouse service in the sandbox: goods-in against credits, quarantine, movements."""

from tests.brightpearl.test_sandbox_orders import credit_body


def make_credit(account, sale, quantity="2"):
    rows = [
        {
            "productId": sale.product_ids[0],
            "quantity": quantity,
            "taxCode": "T20",
            "net": "20.00",
            "tax": "4.00",
        },
        {
            "productId": sale.product_ids[1],
            "quantity": "1",
            "taxCode": "T20",
            "net": "5.00",
            "tax": "1.00",
        },
    ]
    credit_id = account.post("/order-service/sales-credit/", credit_body(sale, rows=rows)).json()[
        "response"
    ]
    credit = account.get(f"/order-service/sales-credit/{credit_id}").json()["response"][0]
    return credit_id, [row["id"] for row in credit["rows"]]


def stock_status(account, order_id):
    return account.get(f"/order-service/order/{order_id}").json()["response"][0]["stockStatusCode"]


def test_warehouses_and_locations(sandbox_account):
    warehouses = sandbox_account.get("/warehouse-service/warehouse").json()["response"]
    assert {w["id"] for w in warehouses} == {2, 3}
    assert sandbox_account.get("/warehouse-service/warehouse/2").json()["response"][0]["name"]
    assert sandbox_account.get("/warehouse-service/warehouse/99").status_code == 404
    locations = sandbox_account.get("/warehouse-service/warehouse/2/location").json()["response"]
    quarantine = sandbox_account.get("/warehouse-service/warehouse/2/location/quarantine").json()
    assert quarantine["response"]["groupingA"] == "QUARANTINE"
    assert quarantine["response"]["id"] in {loc["id"] for loc in locations}


def test_goods_in_post_and_get(sandbox_account, seeded_sale):
    credit_id, row_ids = make_credit(sandbox_account, seeded_sale)
    default_location = sandbox_account.control.state()["warehouses"][0]["defaultLocationId"]
    body = {
        "transfer": False,
        "warehouseId": 2,
        "receivedOn": "2026-01-10T14:48:56.000+00:00",
        "userBatchReference": "RMA-10042",
        "goodsMoved": [
            {
                "productId": seeded_sale.product_ids[0],
                "purchaseOrderRowId": row_ids[0],
                "quantity": 1,
                "destinationLocationId": default_location,
                "productValue": {"currency": "GBP", "value": 12.0},
            },
        ],
    }
    response = sandbox_account.post(
        f"/warehouse-service/order/{credit_id}/goods-note/goods-in", body
    )
    assert response.status_code == 200, response.text
    note_id = response.json()["response"]
    assert stock_status(sandbox_account, credit_id) == "SCP"

    # userBatchReference must be unique.
    dup = sandbox_account.post(f"/warehouse-service/order/{credit_id}/goods-note/goods-in", body)
    assert dup.status_code == 400

    by_order = sandbox_account.get(f"/warehouse-service/order/{credit_id}/goods-note/goods-in/")
    notes = by_order.json()["response"]
    assert list(notes) == [str(note_id)]
    note = notes[str(note_id)]
    assert note["orderId"] == credit_id
    assert note["userBatchReference"] == "RMA-10042"
    assert note["goodsMoved"][0]["purchaseOrderRowId"] == row_ids[0]
    assert note["goodsMoved"][0]["quantity"] == 1
    by_note = sandbox_account.get(f"/warehouse-service/order/*/goods-note/goods-in/{note_id}")
    assert list(by_note.json()["response"]) == [str(note_id)]
    assert sandbox_account.get("/warehouse-service/order/*/goods-note/goods-in/").status_code == 400


def test_goods_in_validation(sandbox_account, seeded_sale):
    credit_id, row_ids = make_credit(sandbox_account, seeded_sale)
    path = f"/warehouse-service/order/{credit_id}/goods-note/goods-in"
    move = {
        "productId": seeded_sale.product_ids[0],
        "purchaseOrderRowId": row_ids[0],
        "quantity": 1,
    }
    cases = [
        {"goodsMoved": [move]},  # no warehouse
        {"warehouseId": 99, "goodsMoved": [move]},
        {"warehouseId": 2, "goodsMoved": []},
        {"warehouseId": 2, "goodsMoved": [{**move, "quantity": 3}]},  # more than on the row
        {
            "warehouseId": 2,
            "goodsMoved": [{**move, "purchaseOrderRowId": row_ids[1]}],
        },  # wrong product
        {"warehouseId": 2, "goodsMoved": [{**move, "destinationLocationId": 9999}]},
    ]
    for body in cases:
        assert sandbox_account.post(path, body).status_code == 400, body
    missing = sandbox_account.post("/warehouse-service/order/999999/goods-note/goods-in", cases[0])
    assert missing.status_code == 400


def test_control_receive_quarantine_and_release(sandbox_account, seeded_sale):
    credit_id, row_ids = make_credit(sandbox_account, seeded_sale)
    control = sandbox_account.control
    state = control.state()
    warehouse = next(w for w in state["warehouses"] if w["id"] == 2)

    note = control.receive(credit_id, rows=[{"rowId": row_ids[0], "quantity": 1}], quarantine=True)
    assert note["goodsMoved"][0]["destinationLocationId"] == warehouse["quarantineLocationId"]
    assert stock_status(sandbox_account, credit_id) == "SCP"

    rest = control.receive(credit_id)  # everything left, into stock
    assert {(m["purchaseOrderRowId"], m["quantity"]) for m in rest["goodsMoved"]} == {
        (row_ids[0], 1),
        (row_ids[1], 1),
    }
    assert stock_status(sandbox_account, credit_id) == "SCA"
    search = sandbox_account.get(
        "/order-service/order-search",
        params={"orderId": str(credit_id), "columns": "orderStockStatusId"},
    )
    assert search.json()["response"]["results"] == [[9]]

    moves = sandbox_account.get(
        "/warehouse-service/goods-movement-search", params={"orderId": str(credit_id)}
    ).json()
    names = [c["name"] for c in moves["response"]["metaData"]["columns"]]
    rows = [dict(zip(names, r, strict=True)) for r in moves["response"]["results"]]
    assert sorted((r["purchaseOrderRowId"], r["isQuarantine"]) for r in rows) == sorted(
        [(row_ids[0], True), (row_ids[0], False), (row_ids[1], False)]
    )
    quarantined = sandbox_account.get(
        "/warehouse-service/goods-movement-search",
        params={"orderId": str(credit_id), "isQuarantine": "true"},
    ).json()["response"]["results"]
    assert len(quarantined) == 1

    # Release the quarantined unit through the API; more than held is refused.
    path = "/warehouse-service/warehouse/2/quarantine/release"
    too_many = {"productId": seeded_sale.product_ids[0], "quantity": 2}
    assert sandbox_account.post(path, too_many).status_code == 400
    released = sandbox_account.post(path, {"productId": seeded_sale.product_ids[0], "quantity": 1})
    assert released.status_code == 200
    stock = {(s["productId"], s["locationId"]): s["quantity"] for s in control.state()["stock"]}
    assert stock[(seeded_sale.product_ids[0], warehouse["quarantineLocationId"])] == 0
    assert stock[(seeded_sale.product_ids[0], warehouse["defaultLocationId"])] == 2

    # Nothing left to receive.
    try:
        control.receive(credit_id)
    except Exception as exc:  # SandboxControlError
        assert exc.status == 400
    else:  # pragma: no cover
        raise AssertionError("expected a 400")


def test_control_quarantine_release(sandbox_account, seeded_sale):
    credit_id, _ = make_credit(sandbox_account, seeded_sale)
    sandbox_account.control.receive(credit_id, quarantine=True)
    release = sandbox_account.control.quarantine_release(2, seeded_sale.product_ids[1], 1)
    assert release["quantity"] == 1
    assert (
        sandbox_account.control.state()["quarantineReleases"][0]["productId"]
        == (seeded_sale.product_ids[1])
    )


def test_credit_status_change_by_control(sandbox_account, seeded_sale):
    credit_id, _ = make_credit(sandbox_account, seeded_sale)
    sandbox_account.control.set_order_status(credit_id, 12)
    order = sandbox_account.get(f"/order-service/order/{credit_id}").json()["response"][0]
    assert order["orderStatus"]["orderStatusId"] == 12
