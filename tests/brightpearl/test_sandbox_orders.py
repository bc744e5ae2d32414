"""Order service in the sandbox: Order GET, Sales Credit POST/GET, search, status, notes, close."""

import pytest


def credit_body(sale, **overrides):
    body = {
        "customer": {"id": sale.contact_id},
        "ref": "RMA-10042",
        "parentId": sale.order_id,
        "statusId": 10,
        "warehouseId": 2,
        "channelId": 1,
        "externalRef": "loop:return:10042",
        "installedIntegrationInstanceId": 34,
        "priceListId": 2,
        "priceModeCode": "INC",
        "currency": {"code": "GBP", "fixedExchangeRate": False},
        "rows": [
            {
                "productId": sale.product_ids[0],
                "name": "Shirt",
                "quantity": "1",
                "taxCode": "T20",
                "net": "10.00",
                "tax": "2.00",
                "nominalCode": "4000",
                "externalRef": "line-77",
            },
            {
                "name": "Return shipping",
                "quantity": "1",
                "taxCode": "T0",
                "net": "-3.00",
                "tax": "0",
            },
        ],
    }
    body.update(overrides)
    return body


def test_order_get_shape(sandbox_account, seeded_sale):
    response = sandbox_account.get(f"/order-service/order/{seeded_sale.order_id}")
    order = response.json()["response"][0]
    assert order["orderTypeCode"] == "SO"
    assert order["parentOrderId"] == 0
    assert order["orderStatus"]["orderStatusId"] == 3
    assert order["parties"]["customer"]["contactId"] == seeded_sale.contact_id
    assert isinstance(order["orderRows"], dict)
    first = order["orderRows"][str(seeded_sale.row_ids[0])]
    assert first["productId"] == seeded_sale.product_ids[0]
    assert first["productSku"] == seeded_sale.skus[0]
    assert first["quantity"]["magnitude"] == "2.0000"
    assert first["rowValue"]["rowNet"]["value"] == "20.0000"
    assert order["totalValue"]["total"] == "42.00"


def test_sales_credit_post_then_get(sandbox_account, seeded_sale):
    response = sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale))
    assert response.status_code == 200
    credit_id = response.json()["response"]
    assert isinstance(credit_id, int)

    credit = sandbox_account.get(f"/order-service/sales-credit/{credit_id}").json()["response"][0]
    assert credit["id"] == credit_id
    assert credit["parentId"] == seeded_sale.order_id
    assert credit["customer"]["id"] == seeded_sale.contact_id
    assert credit["externalRef"] == "loop:return:10042"
    assert credit["installedIntegrationInstanceId"] == 34
    assert credit["ref"] == "RMA-10042"
    assert [row["externalRef"] for row in credit["rows"] if "externalRef" in row] == ["line-77"]
    assert all(isinstance(row["id"], int) for row in credit["rows"])
    assert credit["total"]["gross"] == "9.00"
    assert credit["orderPaymentStatus"] == "UNPAID"

    as_order = sandbox_account.get(f"/order-service/order/{credit_id}").json()["response"][0]
    assert as_order["orderTypeCode"] == "SC"
    assert as_order["parentOrderId"] == seeded_sale.order_id
    assert as_order["stockStatusCode"] == "SCN"
    assert set(as_order["orderRows"]) == {str(row["id"]) for row in credit["rows"]}


def test_sales_credit_get_207_when_some_missing(sandbox_account, seeded_sale):
    credit_id = sandbox_account.post(
        "/order-service/sales-credit/", credit_body(seeded_sale)
    ).json()["response"]
    partial = sandbox_account.get(f"/order-service/sales-credit/{credit_id},{credit_id + 500}")
    assert partial.status_code == 207
    assert [c["id"] for c in partial.json()["response"]] == [credit_id]
    # A sales order id is not a credit.
    assert (
        sandbox_account.get(f"/order-service/sales-credit/{seeded_sale.order_id}").status_code
        == 404
    )


def test_duplicate_external_ref_and_instance_returns_existing(sandbox_account, seeded_sale):
    first = sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale))
    again = sandbox_account.post(
        "/order-service/sales-credit/", credit_body(seeded_sale, ref="CHANGED", rows=[])
    )
    assert again.status_code == 200
    assert again.json()["response"] == first.json()["response"]
    credits = [o for o in sandbox_account.control.state()["orders"] if o["orderTypeCode"] == "SC"]
    assert len(credits) == 1
    assert credits[0]["reference"] == "RMA-10042"
    # Another instance id (or none) is a different key.
    other = sandbox_account.post(
        "/order-service/sales-credit/", credit_body(seeded_sale, installedIntegrationInstanceId=35)
    )
    assert other.json()["response"] != first.json()["response"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"customer": {}}, "customer.id"),
        ({"customer": {"id": 999999}}, "does not exist"),
        ({"parentId": 999999}, "Parent order"),
        ({"statusId": 3}, "not a sales credit status"),
        ({"statusId": 999}, "not a sales credit status"),
        ({"warehouseId": 999}, "Warehouse"),
        ({"channelId": 999}, "Channel"),
        ({"priceModeCode": "GROSS"}, "priceModeCode"),
        (
            {
                "rows": [
                    {"productId": 999999, "quantity": "1", "taxCode": "T20", "net": "1", "tax": "0"}
                ]
            },
            "product",
        ),
        (
            {"rows": [{"quantity": "1", "taxCode": "T20", "net": "1", "tax": "0"}]},
            "productId or name",
        ),
        ({"rows": [{"name": "x", "taxCode": "T20", "net": "1", "tax": "0"}]}, "quantity"),
        ({"rows": [{"name": "x", "quantity": "1", "net": "1", "tax": "0"}]}, "taxCode"),
        ({"rows": [{"name": "x", "quantity": "1", "taxCode": "T20", "tax": "0"}]}, "net"),
        ({"rows": [{"name": "x", "quantity": "1", "taxCode": "T20", "net": "1"}]}, "tax"),
        (
            {"rows": [{"name": "x", "quantity": "one", "taxCode": "T20", "net": "1", "tax": "0"}]},
            "number",
        ),
        (
            {
                "rows": [
                    {"name": "x", "quantity": "1", "taxCode": "T20", "net": "1.23456", "tax": "0"}
                ]
            },
            "decimal places",
        ),
    ],
)
def test_sales_credit_validation(sandbox_account, seeded_sale, change, fragment):
    response = sandbox_account.post(
        "/order-service/sales-credit/", credit_body(seeded_sale, **change)
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"].startswith("ORDC-")
    assert fragment in error["message"]
    # Nothing was created (atomic).
    assert not [o for o in sandbox_account.control.state()["orders"] if o["orderTypeCode"] == "SC"]


def test_stock_tracked_quantity_must_be_whole(sandbox_account, seeded_sale):
    rows = [
        {
            "productId": seeded_sale.product_ids[0],
            "quantity": "1.5",
            "taxCode": "T20",
            "net": "1",
            "tax": "0",
        }
    ]
    response = sandbox_account.post(
        "/order-service/sales-credit/", credit_body(seeded_sale, rows=rows)
    )
    assert response.status_code == 400


def test_no_json_body(sandbox_account):
    response = sandbox_account.call("POST", "/order-service/sales-credit/", data=b"")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "CMNC-010"


def _search(account, query):
    response = account.get("/order-service/order-search", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def _rows(body):
    names = [c["name"] for c in body["response"]["metaData"]["columns"]]
    return [dict(zip(names, row, strict=True)) for row in body["response"]["results"]]


def test_order_search_filters_columns_and_reference(sandbox_account, seeded_sale):
    credit_id = sandbox_account.post(
        "/order-service/sales-credit/", credit_body(seeded_sale)
    ).json()["response"]
    body = _search(sandbox_account, {"orderTypeId": "3", "externalRef": "loop:return:10042"})
    rows = _rows(body)
    assert [r["orderId"] for r in rows] == [credit_id]
    assert rows[0]["parentOrderId"] == seeded_sale.order_id
    assert rows[0]["installedIntegrationInstanceId"] == 34
    assert rows[0]["customerRef"] == "RMA-10042"
    assert rows[0]["orderStockStatusId"] == 7  # SCN
    assert body["reference"]["orderTypeNames"] == {"3": "SALES_CREDIT"}
    meta = body["response"]["metaData"]
    assert meta["columns"][0] == {
        "name": "orderId",
        "sortable": True,
        "filterable": True,
        "reportDataType": "IDSET",
        "referenceData": [],
    }
    assert len(meta["columns"]) == 19

    assert (
        _rows(_search(sandbox_account, {"parentOrderId": str(seeded_sale.order_id)}))[0]["orderId"]
        == credit_id
    )
    assert _rows(_search(sandbox_account, {"installedIntegrationInstanceId": "34"}))
    assert _rows(_search(sandbox_account, {"updatedOn": "2000-01-01T00:00:00Z/"}))
    assert not _rows(_search(sandbox_account, {"updatedOn": "/2000-01-01T00:00:00Z"}))
    assert _rows(
        _search(sandbox_account, {"contactId": str(seeded_sale.contact_id), "orderTypeId": "1"})
    )
    assert _rows(_search(sandbox_account, {"warehouseId": "2", "orderStatusId": "10"}))

    trimmed = _search(sandbox_account, {"orderTypeId": "3", "columns": "orderId,externalRef"})
    assert trimmed["response"]["results"] == [[credit_id, "loop:return:10042"]]


def test_order_search_empty_result(sandbox_account):
    body = _search(sandbox_account, {"externalRef": "nothing-here"})
    meta = body["response"]["metaData"]
    assert body["response"]["results"] == []
    assert meta["morePagesAvailable"] is False
    assert meta["resultsAvailable"] == 0
    assert "firstResult" not in meta and "lastResult" not in meta
    assert "reference" in body


def test_order_search_paging(sandbox_account):
    contact = sandbox_account.control.seed(contacts=[{"firstName": "P"}])["contacts"][0]
    ids = sandbox_account.control.seed(orders=[{"contactId": contact}] * 7)["orders"]
    seen, first = [], 1
    while True:
        body = _search(sandbox_account, {"pageSize": "3", "firstResult": str(first)})
        meta = body["response"]["metaData"]
        seen += [r[0] for r in body["response"]["results"]]
        assert meta["resultsAvailable"] == 7
        if not meta["morePagesAvailable"]:
            break
        first = meta["lastResult"] + 1
    assert seen == ids
    desc = _search(sandbox_account, {"sort": "orderId.DESC", "pageSize": "2"})
    assert [r[0] for r in desc["response"]["results"]] == ids[::-1][:2]


def test_order_search_rejects_unknown_filter(sandbox_account):
    response = sandbox_account.get("/order-service/order-search", params={"bogus": "1"})
    assert response.status_code == 400


def test_status_update_and_note(sandbox_account, seeded_sale):
    credit_id = sandbox_account.post(
        "/order-service/sales-credit/", credit_body(seeded_sale)
    ).json()["response"]
    ok = sandbox_account.put(f"/order-service/order/{credit_id}/status", {"orderStatusId": 11})
    assert ok.status_code == 200
    assert ok.json() == {}
    order = sandbox_account.get(f"/order-service/order/{credit_id}").json()["response"][0]
    assert order["orderStatus"] == {"orderStatusId": 11, "name": "Awaiting return"}
    # A sales-order status, an unknown one and a hidden one are refused.
    for status in (4, 999, 15):
        bad = sandbox_account.put(
            f"/order-service/order/{credit_id}/status", {"orderStatusId": status}
        )
        assert bad.status_code == 400, status
    missing = sandbox_account.put("/order-service/order/999999/status", {"orderStatusId": 11})
    assert missing.status_code == 404

    note = sandbox_account.post(
        f"/order-service/order/{credit_id}/note", {"text": "Created from RMA"}
    )
    assert isinstance(note.json()["response"], int)
    assert sandbox_account.post(f"/order-service/order/{credit_id}/note", {}).status_code == 400
    notes = [n["text"] for n in sandbox_account.control.state()["orderNotes"]]
    assert "Created from RMA" in notes
    assert len(notes) == 2  # the status change added one automatically


def test_sales_credit_close(sandbox_account, seeded_sale):
    credit_id = sandbox_account.post(
        "/order-service/sales-credit/", credit_body(seeded_sale)
    ).json()["response"]
    response = sandbox_account.post(f"/order-service/sales-credit/{credit_id}/close", {})
    assert response.status_code == 200
    assert response.json() == {}
    again = sandbox_account.post(f"/order-service/sales-credit/{credit_id}/close", {})
    assert again.status_code == 200
    assert sandbox_account.post("/order-service/sales-credit/999999/close", {}).status_code == 404


def test_reference_lists(sandbox_account):
    statuses = sandbox_account.get("/order-service/order-status").json()["response"]
    credit_statuses = [s["statusId"] for s in statuses if s["orderTypeCode"] == "SC"]
    assert 10 in credit_statuses
    assert sandbox_account.get("/order-service/order-status/10").json()["response"][0]["name"]
    types = sandbox_account.get("/order-service/order-type").json()["response"]
    assert {"id": 3, "code": "SC", "name": "SALES_CREDIT"} in types


def test_concurrent_duplicate_posts_make_one_credit(sandbox_account, seeded_sale):
    from concurrent.futures import ThreadPoolExecutor

    body = credit_body(seeded_sale, externalRef="loop:return:race")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(lambda _: sandbox_account.post("/order-service/sales-credit/", body), range(8))
        )
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["response"] for a in answers}) == 1


def test_sales_order_get_and_method_not_allowed(sandbox_account, seeded_sale):
    sale = sandbox_account.get(f"/order-service/sales-order/{seeded_sale.order_id}").json()
    assert sale["response"][0]["customer"]["id"] == seeded_sale.contact_id
    response = sandbox_account.delete(f"/order-service/order/{seeded_sale.order_id}")
    assert response.status_code == 405
    assert "errors" in response.json()


def test_contact_search(sandbox_account, seeded_sale):
    found = sandbox_account.get(
        "/contact-service/contact-search", params={"primaryEmail": "ada@example.com"}
    ).json()["response"]
    assert found["results"][0][0] == seeded_sale.contact_id
