"""Accounting and product services in the sandbox: payment methods, nominals, refunds, products."""

import pytest

from tests.brightpearl.test_sandbox_orders import credit_body


@pytest.fixture
def credit_id(sandbox_account, seeded_sale):
    return sandbox_account.post("/order-service/sales-credit/", credit_body(seeded_sale)).json()[
        "response"
    ]


def payment(credit_id, **overrides):
    body = {
        "transactionRef": "loop-refund-5531",
        "paymentMethodCode": "CARD",
        "paymentType": "PAYMENT",
        "orderId": credit_id,
        "currencyIsoCode": "GBP",
        "exchangeRate": 1.0,
        "amountPaid": 9.00,
        "paymentDate": "2026-01-12T10:00:00+00:00",
        "journalRef": "Refund RMA-10042",
    }
    body.update(overrides)
    return body


def test_payment_methods_and_bank_nominals(sandbox_account):
    methods = sandbox_account.get("/accounting-service/payment-method").json()["response"]
    card = next(m for m in methods if m["code"] == "CARD")
    assert card["bankAccounts"][0]["bankAccountNominalCode"] == "1220"
    banks = sandbox_account.get("/accounting-service/nominal-code-search", params={"bank": "true"})
    body = banks.json()["response"]
    names = [c["name"] for c in body["metaData"]["columns"]]
    codes = sorted(dict(zip(names, r, strict=True))["code"] for r in body["results"])
    assert codes == ["1200", "1210", "1220", "1230"]
    nominals = sandbox_account.get("/accounting-service/nominal-code/1-3").json()["response"]
    assert [n["id"] for n in nominals] == [1, 2, 3]


def test_customer_payment_and_uniqueness(sandbox_account, credit_id):
    first = sandbox_account.post("/accounting-service/customer-payment", payment(credit_id))
    assert first.status_code == 200
    payment_id = first.json()["response"]
    again = sandbox_account.post("/accounting-service/customer-payment", payment(credit_id))
    assert again.status_code == 400
    assert again.json()["errors"][0]["code"] == "ACCC-020"
    # Same ref with another payment method is a different key.
    other = sandbox_account.post(
        "/accounting-service/customer-payment", payment(credit_id, paymentMethodCode="BANK")
    )
    assert other.status_code == 200

    found = sandbox_account.get(
        "/accounting-service/customer-payment-search", params={"orderId": str(credit_id)}
    ).json()["response"]
    names = [c["name"] for c in found["metaData"]["columns"]]
    rows = [dict(zip(names, r, strict=True)) for r in found["results"]]
    assert [r["paymentId"] for r in rows][0] == payment_id
    assert rows[0]["transactionRef"] == "loop-refund-5531"
    assert rows[0]["paymentType"] == "PAYMENT"
    by_ref = sandbox_account.get(
        "/accounting-service/customer-payment-search",
        params={"transactionRef": "loop-refund-5531", "paymentMethodCode": "CARD"},
    ).json()["response"]["results"]
    assert len(by_ref) == 1

    credit = sandbox_account.get(f"/order-service/sales-credit/{credit_id}").json()["response"][0]
    assert credit["orderPaymentStatus"] == "PAID"
    totals = sandbox_account.get(f"/accounting-service/sale-payment-total/{credit_id}").json()
    assert totals["response"][0]["amountPaid"] == "-18.00"


@pytest.mark.parametrize(
    "change",
    [
        {"paymentMethodCode": "NOPE"},
        {"paymentMethodCode": None},
        {"paymentType": "REFUND"},
        {"orderId": 999999},
        {"orderId": None},
        {"currencyIsoCode": "POUNDS"},
        {"paymentDate": "yesterday"},
        {"amountPaid": "lots"},
        {"transactionRef": "x" * 65},
    ],
)
def test_customer_payment_validation(sandbox_account, credit_id, change):
    response = sandbox_account.post(
        "/accounting-service/customer-payment", payment(credit_id, **change)
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"].startswith("ACCC-")


def test_delete_customer_payment(sandbox_account, credit_id):
    payment_id = sandbox_account.post(
        "/accounting-service/customer-payment", payment(credit_id)
    ).json()["response"]
    assert sandbox_account.delete(f"/accounting-service/customer-payment/{payment_id}").json() == {}
    assert (
        sandbox_account.delete(f"/accounting-service/customer-payment/{payment_id}").status_code
        == 404
    )


def test_product_search_by_sku_and_get(sandbox_account, seeded_sale):
    found = sandbox_account.get(
        "/product-service/product-search", params={"SKU": seeded_sale.skus[1]}
    ).json()["response"]
    names = [c["name"] for c in found["metaData"]["columns"]]
    row = dict(zip(names, found["results"][0], strict=True))
    assert row["productId"] == seeded_sale.product_ids[1]
    assert row["SKU"] == seeded_sale.skus[1]
    products = sandbox_account.get(f"/product-service/product/{seeded_sale.product_ids[1]}").json()
    assert products["response"][0]["identity"]["sku"] == seeded_sale.skus[1]
    assert sandbox_account.get("/product-service/product/999999").status_code == 404
    assert sandbox_account.get("/product-service/product/").status_code in (400, 404)


def test_channels_and_price_lists(sandbox_account):
    channels = sandbox_account.get("/product-service/channel").json()["response"]
    assert {c["id"] for c in channels} == {1, 2}
    assert sandbox_account.get("/product-service/channel/1").json()["response"][0][
        "defaultWarehouseId"
    ]
    assert sandbox_account.get("/product-service/channel/77").status_code == 404
    lists = sandbox_account.get("/product-service/price-list").json()["response"]
    assert {p["priceListTypeCode"] for p in lists} == {"SELL", "BUY"}
