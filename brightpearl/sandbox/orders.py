"""Order service: Order GET, Sales Credit POST/GET/close, order search, status update, notes.

Orders of every type live in `Account.orders` in one internal shape; Order GET (`orderRows` keyed by
row id) and Sales Credit GET (`rows` array with `id`) are two renderings of it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .common import ApiError, decimal_or_none, iso, money, parse_iso
from .routing import Ctx, Reply, Router, id_set, positive_int
from .searching import Column, run_search
from .state import (
    ORDER_TYPE_IDS,
    ORDER_TYPE_NAMES,
    ORDER_TYPES,
    PAYMENT_STATUS_IDS,
    SHIPPING_STATUS_IDS,
    STOCK_STATUS_IDS,
    Account,
)

router = Router()
# Stock status "NON" (no stock-tracked items) has no documented id; 13 is the sandbox's choice.
STOCK_STATUS_IDS_ALL = {**STOCK_STATUS_IDS, "NON": 13}


# --------------------------------------------------------------------------- model helpers
def received_by_row(account: Account, order_id: int) -> dict[int, Decimal]:
    """Units received per order row, from goods-in movements (`purchaseOrderRowId`)."""
    totals: dict[int, Decimal] = {}
    for movement_id in account.movements_by_order.get(order_id, []):
        movement = account.goods_movements[movement_id]
        if movement.get("purchaseOrderRowId"):
            row_id = movement["purchaseOrderRowId"]
            totals[row_id] = totals.get(row_id, Decimal(0)) + Decimal(movement["quantity"])
    return totals


def stock_status_code(account: Account, order: dict) -> str:
    if order["orderTypeCode"] != "SC":
        return order.get("stockStatusCode", "SOA")
    tracked = [
        row
        for row in order["rows"]
        if row.get("productId") and account.products.get(row["productId"], {}).get("stockTracked")
    ]
    if not tracked:
        return "NON"
    received = received_by_row(account, order["id"])
    done = [received.get(row["id"], Decimal(0)) >= Decimal(row["quantity"]) for row in tracked]
    if all(done):
        return "SCA"
    if any(received.get(row["id"], 0) > 0 for row in tracked):
        return "SCP"
    return "SCN"


def totals(order: dict) -> dict[str, Decimal]:
    net = sum((Decimal(r["net"]) for r in order["rows"]), Decimal(0))
    tax = sum((Decimal(r["tax"]) for r in order["rows"]), Decimal(0))
    return {"net": net, "tax": tax, "gross": net + tax}


def payment_status(account: Account, order: dict) -> str:
    if order["orderTypeCode"] != "SC":
        return order.get("orderPaymentStatus", "PAID")
    paid = Decimal(0)
    for payment_id in account.payments_by_order.get(order["id"], []):
        payment = account.customer_payments.get(payment_id)
        if payment is None:  # deleted
            continue
        amount = Decimal(payment["amountPaid"])
        paid += amount if payment["paymentType"] == "PAYMENT" else -amount
    gross = totals(order)["gross"]
    if paid <= 0:
        return "UNPAID"
    return "PAID" if paid >= gross else "PARTIALLY_PAID"


def new_order(account: Account, data: dict, type_code: str) -> dict:
    """Store an already validated order; `data` uses the internal field names."""
    order_id = int(data.get("id") or account.next_id("order", 100))
    account.bump_counter("order", order_id)
    if order_id in account.orders:
        raise ApiError(400, "SBX-003", f"order {order_id} exists")
    stamp = iso()
    order = {
        "id": order_id,
        "orderTypeCode": type_code,
        "parentOrderId": int(data.get("parentOrderId") or 0),
        "reference": data.get("reference") or "",
        "externalRef": data.get("externalRef"),
        "installedIntegrationInstanceId": data.get("installedIntegrationInstanceId"),
        "statusId": int(data["statusId"]),
        "contactId": int(data["contactId"]),
        "billingContactId": int(data.get("billingContactId") or data["contactId"]),
        "customerAddress": data.get("customerAddress"),
        "billingAddress": data.get("billingAddress"),
        "warehouseId": int(data.get("warehouseId") or 0),
        "channelId": int(data.get("channelId") or 0),
        "priceListId": int(data.get("priceListId") or 2),
        "priceModeCode": data.get("priceModeCode") or "INC",
        "currencyCode": data.get("currencyCode") or account.configuration["baseCurrencyCode"],
        "exchangeRate": str(data.get("exchangeRate") or "1.000000"),
        "fixedExchangeRate": bool(data.get("fixedExchangeRate", False)),
        "placedOn": data.get("placedOn") or stamp,
        "taxDate": data.get("taxDate") or stamp,
        "createdOn": stamp,
        "updatedOn": stamp,
        "createdBy": 4,
        "version": 1,
        "delivery": data.get("delivery"),
        "staffOwnerId": int(data.get("staffOwnerId") or 0),
        "projectId": int(data.get("projectId") or 0),
        "leadSourceId": int(data.get("leadSourceId") or 0),
        "teamId": int(data.get("teamId") or 0),
        "closedOn": None,
        "closeState": None,
        "stockStatusCode": data.get("stockStatusCode", "SOA"),
        "shippingStatusCode": data.get("shippingStatusCode", "ASS" if type_code == "SO" else "NST"),
        "allocationStatusCode": data.get(
            "allocationStatusCode", "AAA" if type_code == "SO" else "ANR"
        ),
        "orderPaymentStatus": data.get("orderPaymentStatus", "PAID"),
        "invoiceReference": data.get("invoiceReference"),
        "rows": [],
    }
    order["rows"] = [_new_row(account, row) for row in data.get("rows", [])]
    account.orders[order_id] = order
    return order


def _new_row(account: Account, row: dict) -> dict:
    """One validated row, stored with a new row id and its product's name, SKU and cost."""
    row_id = account.next_id("order-row")
    product = account.products.get(row.get("productId") or 0)
    return {
        "id": row_id,
        "productId": row.get("productId"),
        "name": row.get("name") or (product["name"] if product else ""),
        "sku": product["sku"] if product else None,
        "quantity": str(row["quantity"]),
        "taxCode": row["taxCode"],
        "net": str(row["net"]),
        "tax": str(row["tax"]),
        "nominalCode": row.get("nominalCode") or account.configuration["salesNominalCode"],
        "externalRef": row.get("externalRef"),
        "itemCost": product["cost"] if product else "0.00",
    }


# --------------------------------------------------------------------------- renderings
def render_order(account: Account, order: dict) -> dict:
    """Order GET shape (recorded): `orderRows` keyed by row id, nested values as strings."""
    status = account.order_statuses.get(order["statusId"], {})
    rows = {
        str(row["id"]): _render_order_row(order, sequence, row)
        for sequence, row in enumerate(order["rows"], start=1)
    }
    body = {
        "id": order["id"],
        "parentOrderId": order["parentOrderId"],
        "orderTypeCode": order["orderTypeCode"],
        "reference": order["reference"],
        "externalRef": order["externalRef"],
        "version": order["version"],
        "orderStatus": {"orderStatusId": order["statusId"], "name": status.get("name", "")},
        "orderPaymentStatus": payment_status(account, order),
        "stockStatusCode": stock_status_code(account, order),
        "allocationStatusCode": order["allocationStatusCode"],
        "shippingStatusCode": order["shippingStatusCode"],
        "placedOn": order["placedOn"],
        "createdOn": order["createdOn"],
        "updatedOn": order["updatedOn"],
        "closedOn": order["closedOn"],
        "priceListId": order["priceListId"],
        "priceModeCode": order["priceModeCode"],
        "invoices": [
            {
                "invoiceReference": order.get("invoiceReference") or "",
                "taxDate": order["taxDate"],
                "dueDate": order["taxDate"],
            }
        ],
        "currency": {
            "accountingCurrencyCode": account.configuration["baseCurrencyCode"],
            "orderCurrencyCode": order["currencyCode"],
            "exchangeRate": order["exchangeRate"],
            "fixedExchangeRate": order["fixedExchangeRate"],
        },
        "totalValue": _render_total_value(order),
        "assignment": {
            "current": {
                "channelId": order["channelId"],
                "teamId": order["teamId"],
                "staffOwnerContactId": order["staffOwnerId"],
                "projectId": order["projectId"],
                "leadSourceId": order["leadSourceId"],
            }
        },
        "parties": _render_parties(account, order),
        "orderRows": rows,
        "warehouseId": order["warehouseId"],
        "costPriceListId": 1,
    }
    return body


def _render_total_value(order: dict) -> dict:
    sums = totals(order)
    rate = Decimal(order["exchangeRate"])
    return {
        "net": money(sums["net"]),
        "taxAmount": money(sums["tax"]),
        "baseNet": money(sums["net"] / rate),
        "baseTaxAmount": money(sums["tax"] / rate),
        "baseTotal": money(sums["gross"] / rate),
        "total": money(sums["gross"]),
    }


def _render_order_row(order: dict, sequence: int, row: dict) -> dict:
    net = Decimal(row["net"])
    rate_pct = (Decimal(row["tax"]) / net * 100) if net else Decimal(0)
    return {
        "orderRowSequence": str(sequence),
        "productId": row["productId"],
        "productName": row["name"],
        "productSku": row["sku"],
        "quantity": {"magnitude": money(row["quantity"], 4)},
        "itemCost": {"currencyCode": order["currencyCode"], "value": money(row["itemCost"], 4)},
        "rowValue": {
            "taxRate": money(rate_pct, 4),
            "taxCode": row["taxCode"],
            "taxCalculator": "BP",
            "rowNet": {"value": money(net, 4)},
            "rowTax": {"value": money(row["tax"], 2)},
        },
        "nominalCode": row["nominalCode"],
        "composition": {"bundleParent": False, "bundleChild": False, "parentOrderRowId": 0},
    }


def _render_parties(account: Account, order: dict) -> dict:
    customer = account.contacts.get(order["contactId"], {})
    return {
        "customer": {
            "contactId": order["contactId"],
            "email": customer.get("primaryEmail"),
            **(order.get("customerAddress") or {}),
        },
        "delivery": dict((order.get("delivery") or {}).get("address") or {}),
        "billing": {
            "contactId": order["billingContactId"],
            **(order.get("billingAddress") or {}),
        },
    }


def render_sales_credit(account: Account, order: dict) -> dict:
    """Sales Credit GET: the POST's writable fields plus read-only ones; rows carry `id`."""
    sums = totals(order)
    rate = Decimal(order["exchangeRate"])
    cancelled_id = account.configuration.get("cancelledOrderStatusId")
    status = account.order_statuses.get(order["statusId"], {})
    return {
        "id": order["id"],
        "customer": {"id": order["contactId"], "address": order.get("customerAddress")},
        "billing": {"contactId": order["billingContactId"], "address": order.get("billingAddress")},
        "ref": order["reference"],
        "placedOn": order["placedOn"],
        "taxDate": order["taxDate"],
        "parentId": order["parentOrderId"] or None,
        "statusId": order["statusId"],
        "warehouseId": order["warehouseId"] or None,
        "channelId": order["channelId"] or None,
        "externalRef": order["externalRef"],
        "installedIntegrationInstanceId": order["installedIntegrationInstanceId"],
        "staffOwnerId": order["staffOwnerId"],
        "projectId": order["projectId"],
        "leadSourceId": order["leadSourceId"],
        "teamId": order["teamId"],
        "priceListId": order["priceListId"],
        "priceModeCode": order["priceModeCode"],
        "currency": {
            "code": order["currencyCode"],
            "fixedExchangeRate": order["fixedExchangeRate"],
            "exchangeRate": order["exchangeRate"],
        },
        "delivery": order.get("delivery"),
        "rows": [_render_credit_row(row) for row in order["rows"]],
        "createdOn": order["createdOn"],
        "createdBy": order["createdBy"],
        "updatedOn": order["updatedOn"],
        "total": {
            "net": money(sums["net"]),
            "tax": money(sums["tax"]),
            "gross": money(sums["gross"]),
            "baseNet": money(sums["net"] / rate),
            "baseTax": money(sums["tax"] / rate),
            "baseGross": money(sums["gross"] / rate),
        },
        "isCanceled": (status.get("statusId") == int(cancelled_id)) if cancelled_id else None,
        "orderPaymentStatus": payment_status(account, order),
        "allocationStatusCode": order["allocationStatusCode"],
        "shippingStatusCode": order["shippingStatusCode"],
    }


def _render_credit_row(row: dict) -> dict:
    return {
        "id": row["id"],
        "productId": row["productId"],
        "name": row["name"],
        "quantity": money(row["quantity"], 4),
        "taxCode": row["taxCode"],
        "net": money(row["net"], 4),
        "tax": money(row["tax"], 4),
        "nominalCode": row["nominalCode"],
        "externalRef": row.get("externalRef"),
        "sku": row["sku"],
        "bundleChild": False,
        "bundleParent": False,
        "parentRowId": None,
    }


# --------------------------------------------------------------------------- Order GET
@router.route("GET", r"/order-service/order/(?P<ids>[^/]+)/?")
def get_orders(ctx: Ctx, ids: str):
    wanted = id_set(ids)
    found = [ctx.account.orders[i] for i in wanted if i in ctx.account.orders]
    # A recorded Order GET for a missing id returned 200 {"response": []}.
    return [render_order(ctx.account, order) for order in found]


def _orders_of_type(ctx: Ctx, ids: str, type_code: str, missing: str) -> Reply:
    """Sales Order / Sales Credit GET: 404 when none exist, 207 when only some do [DOC]."""
    wanted = id_set(ids)
    found = [
        ctx.account.orders[i]
        for i in wanted
        if ctx.account.orders.get(i, {}).get("orderTypeCode") == type_code
    ]
    if not found:
        raise ApiError(404, "CMNC-404", missing)
    body = [render_sales_credit(ctx.account, order) for order in found]
    return Reply(207 if len(found) < len(wanted) else 200, {"response": body})


@router.route("GET", r"/order-service/sales-order/(?P<ids>[^/]+)/?")
def get_sales_orders(ctx: Ctx, ids: str):
    return _orders_of_type(ctx, ids, "SO", "No sales orders found")


# --------------------------------------------------------------------------- Sales credit
@router.route("GET", r"/order-service/sales-credit/(?P<ids>[^/]+)/?")
def get_sales_credits(ctx: Ctx, ids: str):
    return _orders_of_type(ctx, ids, "SC", "No sales credits found for the requested IDs")


@router.route("GET", r"/order-service/sales-credit/?")
def get_sales_credit_without_ids(ctx: Ctx):
    raise ApiError(400, "CMNC-400", "An ID set is required")


def _decimal_field(value, name: str, places: int = 4) -> Decimal:
    number = decimal_or_none(value)
    if number is None:
        raise ApiError(400, "ORDC-012", f"{name} must be a number, got {value!r}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        raise ApiError(400, "ORDC-013", f"{name} has more than {places} decimal places")
    return number


def validate_rows(account: Account, rows) -> list[dict]:
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise ApiError(400, "ORDC-010", "rows must be a list")
    result = []
    for index, row in enumerate(rows):
        where = f"rows[{index}]"
        if not isinstance(row, dict):
            raise ApiError(400, "ORDC-010", f"{where} must be an object")
        product_id = row.get("productId")
        product = None
        if product_id not in (None, ""):
            product_id = positive_int(product_id, f"{where}.productId", "ORDC-014")
            product = account.products.get(product_id)
            if product is None:
                raise ApiError(400, "ORDC-015", f"{where}: product {product_id} does not exist")
        elif not (isinstance(row.get("name"), str) and row["name"].strip()):
            raise ApiError(400, "ORDC-016", f"{where}: either productId or name is required")
        for required in ("quantity", "taxCode", "net", "tax"):
            if row.get(required) in (None, ""):
                raise ApiError(400, "ORDC-017", f"{where}.{required} is required")
        quantity = _decimal_field(row["quantity"], f"{where}.quantity")
        if quantity <= 0:
            raise ApiError(400, "ORDC-018", f"{where}.quantity must be greater than zero")
        if product and product["stockTracked"] and quantity != quantity.to_integral_value():
            raise ApiError(
                400, "ORDC-019", f"{where}.quantity must be whole for a stock-tracked product"
            )
        net = _decimal_field(row["net"], f"{where}.net")
        tax = _decimal_field(row["tax"], f"{where}.tax")
        result.append(
            {
                "productId": product_id if product else None,
                "name": row.get("name"),
                "quantity": str(quantity),
                "taxCode": str(row["taxCode"]),
                "net": str(net),
                "tax": str(tax),
                "nominalCode": row.get("nominalCode"),
                "externalRef": row.get("externalRef"),
            }
        )
    return result


def _optional_id(value, name: str, table: dict, code: str, what: str) -> int | None:
    if value in (None, ""):
        return None
    number = positive_int(value, name, code)
    if number not in table:
        raise ApiError(400, code, f"{what} {number} does not exist")
    return number


def _iso_field(value, name: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return iso(parse_iso(str(value)))
    except ValueError as exc:
        raise ApiError(400, "ORDC-020", f"{name} is not an ISO 8601 date") from exc


def find_duplicate_credit(account: Account, external_ref, instance_id) -> dict | None:
    if not external_ref or not instance_id:
        return None
    for order in account.orders.values():
        if (
            order["orderTypeCode"] == "SC"
            and order["externalRef"] == str(external_ref)
            and order["installedIntegrationInstanceId"] == int(instance_id)
        ):
            return order
    return None


@router.route("POST", r"/order-service/sales-credit/?")
def post_sales_credit(ctx: Ctx):
    body = ctx.req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "CMNC-400", "The body must be a JSON object")
    account = ctx.account
    customer, customer_id = _credit_customer(account, body)
    instance_id = body.get("installedIntegrationInstanceId")
    if instance_id not in (None, ""):
        instance_id = positive_int(instance_id, "installedIntegrationInstanceId")
    else:
        instance_id = None
    external_ref = body.get("externalRef")
    duplicate = find_duplicate_credit(account, external_ref, instance_id)
    if duplicate is not None:
        return _duplicate_credit_answer(account, duplicate, external_ref)
    parent_id, status_id = _credit_parent_and_status(account, body)
    places = _credit_places(account, body)
    price_mode = body.get("priceModeCode") or "INC"
    if price_mode not in ("INC", "EXC"):
        raise ApiError(400, "ORDC-009", "priceModeCode must be INC or EXC")
    currency, currency_code, exchange_rate = _credit_currency(account, body)
    rows = validate_rows(account, body.get("rows"))
    billing = body.get("billing") if isinstance(body.get("billing"), dict) else {}
    billing_contact = _optional_id(
        billing.get("contactId"), "billing.contactId", account.contacts, "ORDC-002", "Contact"
    )
    order = new_order(
        account,
        {
            "parentOrderId": parent_id,
            "reference": body.get("ref") or "",
            "externalRef": str(external_ref) if external_ref not in (None, "") else None,
            "installedIntegrationInstanceId": instance_id,
            "statusId": status_id,
            "contactId": customer_id,
            "billingContactId": billing_contact,
            "customerAddress": customer.get("address"),
            "billingAddress": billing.get("address"),
            **places,
            "priceModeCode": price_mode,
            "currencyCode": currency_code.upper(),
            "exchangeRate": exchange_rate,
            "fixedExchangeRate": bool(currency.get("fixedExchangeRate")),
            "placedOn": _iso_field(body.get("placedOn"), "placedOn"),
            "taxDate": _iso_field(body.get("taxDate"), "taxDate"),
            "delivery": body.get("delivery"),
            "staffOwnerId": body.get("staffOwnerId"),
            "projectId": body.get("projectId"),
            "leadSourceId": body.get("leadSourceId"),
            "teamId": body.get("teamId"),
            "shippingStatusCode": "NST",
            "allocationStatusCode": "ANR",
            "rows": rows,
        },
        "SC",
    )
    return order["id"]


def _credit_customer(account: Account, body: dict) -> tuple[dict, int]:
    """The credit's `customer` object and its contact id (which must exist)."""
    customer = body.get("customer") if isinstance(body.get("customer"), dict) else {}
    customer_id = customer.get("id", body.get("customerId"))
    if customer_id in (None, ""):
        raise ApiError(400, "ORDC-001", "customer.id is required")
    customer_id = positive_int(customer_id, "customer.id", "ORDC-001")
    if customer_id not in account.contacts:
        raise ApiError(400, "ORDC-002", f"Contact {customer_id} does not exist")
    return customer, customer_id


def _duplicate_credit_answer(account: Account, duplicate: dict, external_ref):
    """Documented: "assumed to be a duplicate and result in a 200 response. No changes will be
    made". The body is UNCONFIRMED: by default the existing credit's id; the control API
    switches to the other plausible shapes (no body, a text) — a refusal in a 200."""
    if account.duplicate_credit_answer == "empty":
        return Reply(200, {})
    if account.duplicate_credit_answer == "message":
        return f"Duplicate sales credit (externalRef {external_ref}): no changes were made"
    return duplicate["id"]


def _credit_parent_and_status(account: Account, body: dict) -> tuple[int, int]:
    """The parent order (0 for none; it must exist) and a sales-credit status id."""
    parent_id = body.get("parentId")
    if parent_id not in (None, "", 0, "0"):
        parent_id = positive_int(parent_id, "parentId", "ORDC-003")
        if parent_id not in account.orders:
            raise ApiError(400, "ORDC-003", f"Parent order {parent_id} does not exist")
    else:
        parent_id = 0
    status_id = body.get("statusId") or account.configuration["newSalesCreditStatusId"]
    status_id = positive_int(status_id, "statusId", "ORDC-004")
    status = account.order_statuses.get(status_id)
    if status is None or status["orderTypeCode"] != "SC":
        raise ApiError(400, "ORDC-004", f"Order status {status_id} is not a sales credit status")
    return parent_id, status_id


def _credit_places(account: Account, body: dict) -> dict:
    """Warehouse, channel and price list: optional, each must exist when given."""
    return {
        "warehouseId": _optional_id(
            body.get("warehouseId"), "warehouseId", account.warehouses, "ORDC-006", "Warehouse"
        ),
        "channelId": _optional_id(
            body.get("channelId"), "channelId", account.channels, "ORDC-007", "Channel"
        ),
        "priceListId": _optional_id(
            body.get("priceListId"), "priceListId", account.price_lists, "ORDC-008", "Price list"
        ),
    }


def _credit_currency(account: Account, body: dict) -> tuple[dict, str, Any]:
    """The `currency` object, its 3-letter code (the account's base currency by default) and
    the exchange rate when one is given."""
    currency = body.get("currency") if isinstance(body.get("currency"), dict) else {}
    currency_code = currency.get("code") or account.configuration["baseCurrencyCode"]
    if not (isinstance(currency_code, str) and len(currency_code) == 3 and currency_code.isalpha()):
        raise ApiError(400, "ORDC-011", "currency.code must be a 3-letter ISO code")
    exchange_rate = currency.get("exchangeRate")
    if exchange_rate not in (None, ""):
        rate = decimal_or_none(exchange_rate)
        if rate is None or rate <= 0:
            raise ApiError(400, "ORDC-011", "currency.exchangeRate must be a positive number")
        exchange_rate = money(rate, 6)
    return currency, currency_code, exchange_rate


@router.route("POST", r"/order-service/sales-credit/(?P<order_id>\d+)/close/?")
def close_sales_credit(ctx: Ctx, order_id: str):
    order = ctx.account.orders.get(int(order_id))
    if order is None or order["orderTypeCode"] != "SC":
        raise ApiError(404, "CMNC-404", f"Sales credit {order_id} not found")
    body = ctx.req.json(required=False) or {}
    if order["closeState"] == "INVOICED":
        raise ApiError(400, "ORDC-030", "The sales credit has already been invoiced")
    order["closeState"] = "INVOICE_PENDING"
    if body.get("taxDate"):
        order["taxDate"] = _iso_field(body["taxDate"], "taxDate")
    ctx.account.touch(order)
    return Reply(200, {})


# --------------------------------------------------------------------------- status + notes
def change_status(
    ctx: Ctx, order: dict, status_id: int, note_text: str | None = None, is_public: bool = False
) -> None:
    status = ctx.account.order_statuses.get(status_id)
    if status is None:
        raise ApiError(400, "ORDC-021", f"Order status {status_id} does not exist")
    if status["orderTypeCode"] != order["orderTypeCode"]:
        raise ApiError(
            400, "ORDC-022", f"Order status {status_id} is not for {order['orderTypeCode']} orders"
        )
    if not status["visible"] or status["disabled"]:
        raise ApiError(400, "ORDC-023", f"Order status {status_id} is hidden")
    old = ctx.account.order_statuses.get(order["statusId"], {}).get("name", "")
    order["statusId"] = status_id
    ctx.account.touch(order)
    add_note(
        ctx.account,
        order,
        note_text or f"Order status changed from {old} to {status['name']}",
        is_public,
    )
    ctx.emit("order.modified.order-status", [order["id"]])


def add_note(
    account: Account, order: dict, text: str, is_public: bool = False, added_on: str | None = None
) -> dict:
    note_id = account.next_id("order-note")
    note = {
        "noteId": note_id,
        "orderId": order["id"],
        "text": text,
        "isPublic": bool(is_public),
        "addedOn": added_on or iso(),
        "addedBy": 4,
    }
    account.order_notes[note_id] = note
    return note


@router.route("PUT", r"/order-service/order/(?P<order_id>\d+)/status/?")
def put_order_status(ctx: Ctx, order_id: str):
    order = ctx.account.orders.get(int(order_id))
    if order is None:
        raise ApiError(404, "CMNC-404", f"Order {order_id} not found")
    body = ctx.req.json()
    if not isinstance(body, dict) or body.get("orderStatusId") in (None, ""):
        raise ApiError(400, "ORDC-021", "orderStatusId is required")
    status_id = positive_int(body["orderStatusId"], "orderStatusId", "ORDC-021")
    note = body.get("orderNote") if isinstance(body.get("orderNote"), dict) else {}
    change_status(ctx, order, status_id, note.get("text"), note.get("isPublic", False))
    return Reply(200, {})


@router.route("POST", r"/order-service/order/(?P<order_id>\d+)/note/?")
def post_order_note(ctx: Ctx, order_id: str):
    order = ctx.account.orders.get(int(order_id))
    if order is None:
        raise ApiError(404, "CMNC-404", f"Order {order_id} not found")
    body = ctx.req.json()
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        raise ApiError(400, "ORDC-025", "text is required")
    added_on = _iso_field(body.get("addedOn"), "addedOn")
    note = add_note(ctx.account, order, body["text"], body.get("isPublic", False), added_on)
    return note["noteId"]


# --------------------------------------------------------------------------- reference lists
@router.route("GET", r"/order-service/order-status(?:/(?P<ids>[^/]*))?/?")
def get_order_statuses(ctx: Ctx, ids: str | None = None):
    wanted = id_set(ids, required=False)
    statuses = sorted(ctx.account.order_statuses.values(), key=lambda s: s["statusId"])
    return [s for s in statuses if wanted is None or s["statusId"] in wanted]


@router.route("GET", r"/order-service/order-type/?")
def get_order_types(ctx: Ctx):
    return [
        {"id": type_id, "code": code, "name": ORDER_TYPE_NAMES[type_id]}
        for type_id, code in ORDER_TYPES.items()
    ]


@router.route("GET", r"/order-service/order-stock-status/?")
def get_stock_statuses(ctx: Ctx):
    return [
        {"id": i, "code": c} for c, i in sorted(STOCK_STATUS_IDS_ALL.items(), key=lambda x: x[1])
    ]


@router.route("GET", r"/order-service/order-shipping-status/?")
def get_shipping_statuses(ctx: Ctx):
    return [{"id": i, "code": c} for c, i in SHIPPING_STATUS_IDS.items()]


# --------------------------------------------------------------------------- order search
def _search_record(account: Account, order: dict) -> dict:
    return {
        "orderId": order["id"],
        "orderTypeId": ORDER_TYPE_IDS[order["orderTypeCode"]],
        "contactId": order["contactId"],
        "orderStatusId": order["statusId"],
        "orderStockStatusId": STOCK_STATUS_IDS_ALL.get(stock_status_code(account, order)),
        "createdOn": order["createdOn"],
        "createdById": order["createdBy"],
        "customerRef": order["reference"],
        "orderPaymentStatusId": PAYMENT_STATUS_IDS.get(payment_status(account, order)),
        "updatedOn": order["updatedOn"],
        "parentOrderId": order["parentOrderId"],
        "orderShippingStatusId": SHIPPING_STATUS_IDS.get(order["shippingStatusCode"]),
        "externalRef": order["externalRef"],
        "installedIntegrationInstanceId": order["installedIntegrationInstanceId"],
        "warehouseId": order["warehouseId"],
        "staffOwnerContactId": order["staffOwnerId"],
        "taxDate": order["taxDate"],
        "departmentId": 0,
        "deliveryDate": (order.get("delivery") or {}).get("date"),
    }


_ORDER_COLUMN_TYPES = [
    ("orderId", "IDSET"),
    ("orderTypeId", "IDSET"),
    ("contactId", "IDSET"),
    ("orderStatusId", "IDSET"),
    ("orderStockStatusId", "IDSET"),
    ("createdOn", "PERIOD"),
    ("createdById", "IDSET"),
    ("customerRef", "STRING"),
    ("orderPaymentStatusId", "IDSET"),
    ("updatedOn", "PERIOD"),
    ("parentOrderId", "IDSET"),
    ("orderShippingStatusId", "IDSET"),
    ("externalRef", "STRING"),
    ("installedIntegrationInstanceId", "IDSET"),
    ("warehouseId", "IDSET"),
    ("staffOwnerContactId", "IDSET"),
    ("taxDate", "PERIOD"),
    ("departmentId", "IDSET"),
    ("deliveryDate", "PERIOD"),
]
ORDER_COLUMNS = [Column(name, kind, lambda r, n=name: r[n]) for name, kind in _ORDER_COLUMN_TYPES]


@router.route("GET", r"/order-service/order-search/?")
def order_search(ctx: Ctx):
    account = ctx.account
    records = [_search_record(account, order) for order in account.orders.values()]

    def reference(page: list[dict]) -> dict:
        type_ids = {r["orderTypeId"] for r in page}
        status_ids = {r["orderStatusId"] for r in page}
        return {
            "orderTypeNames": {str(t): ORDER_TYPE_NAMES[t] for t in sorted(type_ids)},
            "orderStatusNames": {
                str(s): account.order_statuses[s]["name"]
                for s in sorted(status_ids)
                if s in account.order_statuses
            },
        }

    return Reply(200, run_search(ctx.req, ORDER_COLUMNS, records, reference=reference))


# ------------------------------------------------------------------ sales order search
_SALES_ORDER_COLUMNS = [
    Column("salesOrderId", "IDSET", lambda r: r["orderId"]),
    Column("customerId", "IDSET", lambda r: r["contactId"]),
    Column("orderStatusId", "IDSET", lambda r: r["orderStatusId"]),
    Column("createdOn", "PERIOD", lambda r: r["createdOn"]),
    Column("customerRef", "STRING", lambda r: r["customerRef"]),
    Column("updatedOn", "PERIOD", lambda r: r["updatedOn"]),
    Column("externalRef", "STRING", lambda r: r["externalRef"]),
    Column(
        "installedIntegrationInstanceId", "IDSET", lambda r: r["installedIntegrationInstanceId"]
    ),
    Column("warehouseId", "IDSET", lambda r: r["warehouseId"]),
]


def _customer_refs(record: dict, raw: str) -> bool:
    """The STRING_SET filter `customerRefs`: several customer references at once (the docs'
    words); its syntax is UNCONFIRMED — the sandbox takes them comma-separated."""
    return str(record["customerRef"] or "") in {v for v in raw.split(",") if v}


@router.route("GET", r"/order-service/sales-order-search/?")
def sales_order_search(ctx: Ctx):
    account = ctx.account
    records = [
        _search_record(account, order)
        for order in account.orders.values()
        if order["orderTypeCode"] == "SO"
    ]
    return Reply(
        200,
        run_search(
            ctx.req,
            _SALES_ORDER_COLUMNS,
            records,
            extra_filters={"customerRefs": _customer_refs},
        ),
    )
