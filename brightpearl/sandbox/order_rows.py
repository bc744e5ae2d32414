"""Changing an existing order (a sales credit too) after it was made: Order Row POST and PATCH
[DOC], Order Row DELETE (UNCONFIRMED: its reference page is empty; client libraries use this
path), and the order notes search (`order-note-search`, columns as documented) that tells
whether a note is already there.

Rules kept [DOC]: a row needs a product ID or a product name; quantity, tax code, net and tax;
a stock-tracked product's quantity is whole; an invoiced order's rows cannot be changed; a
quantity cannot go below what is already fulfilled — for a credit, received (goods-in).
The sandbox also refuses to delete a row that has received goods (its stock was moved).
"""

from __future__ import annotations

from decimal import Decimal

from .common import ApiError
from .orders import _decimal_field, received_by_row
from .routing import Ctx, Reply, Router, positive_int
from .searching import Column, run_search

router = Router()
PATCHABLE = {
    "/quantity/magnitude": "quantity",
    "/rowValue/rowNet/value": "net",
    "/rowValue/rowTax/value": "tax",
    "/nominalCode": "nominalCode",
}


def _order(ctx: Ctx, order_id: str) -> dict:
    order = ctx.account.orders.get(int(order_id))
    if order is None:
        raise ApiError(404, "CMNC-404", f"Order {order_id} not found")
    if order.get("closeState") or order.get("invoiceReference"):
        raise ApiError(400, "ORDC-031", f"Order {order_id} has been invoiced; its rows are fixed")
    return order


def _row(order: dict, row_id: str) -> dict:
    for row in order["rows"]:
        if row["id"] == int(row_id):
            return row
    raise ApiError(404, "CMNC-404", f"Order row {row_id} not found on order {order['id']}")


def _quantity(ctx: Ctx, value, product_id) -> Decimal:
    quantity = _decimal_field(value, "quantity.magnitude")
    if quantity <= 0:
        raise ApiError(400, "ORDC-018", "quantity.magnitude must be greater than zero")
    product = ctx.account.products.get(product_id or 0)
    if product and product["stockTracked"] and quantity != quantity.to_integral_value():
        raise ApiError(400, "ORDC-019", "quantity must be whole for a stock-tracked product")
    return quantity


@router.route("POST", r"/order-service/order/(?P<order_id>\d+)/row/?")
def post_order_row(ctx: Ctx, order_id: str):
    order = _order(ctx, order_id)
    body = ctx.req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "CMNC-400", "The body must be a JSON object")
    product_id = body.get("productId")
    product = None
    if product_id not in (None, ""):
        product_id = positive_int(product_id, "productId", "ORDC-014")
        product = ctx.account.products.get(product_id)
        if product is None:
            raise ApiError(400, "ORDC-015", f"Product {product_id} does not exist")
    elif not str(body.get("productName") or "").strip():
        raise ApiError(400, "ORDC-016", "Either productId or productName is required")
    value = body.get("rowValue") if isinstance(body.get("rowValue"), dict) else {}
    quantity = _quantity(ctx, (body.get("quantity") or {}).get("magnitude"), product_id)
    if not value.get("taxCode"):
        raise ApiError(400, "ORDC-017", "rowValue.taxCode is required")
    net = _decimal_field((value.get("rowNet") or {}).get("value"), "rowValue.rowNet.value")
    tax = _decimal_field((value.get("rowTax") or {}).get("value"), "rowValue.rowTax.value", 2)
    row_id = ctx.account.next_id("order-row")
    order["rows"].append(
        {
            "id": row_id,
            "productId": product_id if product else None,
            "name": body.get("productName") or (product["name"] if product else ""),
            "sku": product["sku"] if product else None,
            "quantity": str(quantity),
            "taxCode": str(value["taxCode"]),
            "net": str(net),
            "tax": str(tax),
            "nominalCode": body.get("nominalCode") or ctx.account.configuration["salesNominalCode"],
            "externalRef": None,  # not a documented Order Row POST field
            "itemCost": product["cost"] if product else "0.00",
        }
    )
    ctx.account.touch(order)
    return row_id


@router.route("PATCH", r"/order-service/order/(?P<order_id>\d+)/row/(?P<row_id>\d+)/?")
def patch_order_row(ctx: Ctx, order_id: str, row_id: str):
    order = _order(ctx, order_id)
    row = _row(order, row_id)
    operations = ctx.req.json()
    if not isinstance(operations, list) or not operations:
        raise ApiError(400, "CMNC-400", "The body must be a JSON Patch array")
    changes = {}
    for op in operations:
        if not isinstance(op, dict) or op.get("op") not in ("replace", "add"):
            raise ApiError(400, "CMNC-400", f"Unsupported patch operation {op!r}")
        field_name = PATCHABLE.get(str(op.get("path")))
        if field_name is None:
            raise ApiError(400, "CMNC-400", f"{op.get('path')} cannot be patched")
        changes[field_name] = op.get("value")
    if "quantity" in changes:
        quantity = _quantity(ctx, changes["quantity"], row.get("productId"))
        received = received_by_row(ctx.account, order["id"]).get(row["id"], Decimal(0))
        if quantity < received:
            raise ApiError(
                400, "ORDC-032", f"Quantity {quantity} is below the {received} already received"
            )
        changes["quantity"] = str(quantity)
    for name in ("net", "tax"):
        if name in changes:
            changes[name] = str(_decimal_field(changes[name], f"row {name}"))
    row.update(changes)
    ctx.account.touch(order)
    return Reply(200, {})


@router.route("DELETE", r"/order-service/order/(?P<order_id>\d+)/row/(?P<row_id>\d+)/?")
def delete_order_row(ctx: Ctx, order_id: str, row_id: str):
    order = _order(ctx, order_id)
    row = _row(order, row_id)
    if received_by_row(ctx.account, order["id"]).get(row["id"]):
        raise ApiError(400, "ORDC-033", f"Goods were received against row {row_id}")
    order["rows"].remove(row)
    ctx.account.touch(order)
    return Reply(200, {})


NOTE_COLUMNS = [
    Column("noteId", "IDSET", lambda n: n["noteId"]),
    Column("orderId", "IDSET", lambda n: n["orderId"]),
    Column("noteText", "STRING", lambda n: n["text"]),
    Column("isPublic", "BOOLEAN", lambda n: n["isPublic"]),
    Column("addedOn", "PERIOD", lambda n: n["addedOn"]),
    Column("addedBy", "IDSET", lambda n: n["addedBy"]),
]


@router.route("GET", r"/order-service/order-note-search/?")
def order_note_search(ctx: Ctx):
    notes = list(ctx.account.order_notes.values())
    return Reply(200, run_search(ctx.req, NOTE_COLUMNS, notes))
