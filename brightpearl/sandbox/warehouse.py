"""Warehouse service: warehouses and locations, goods-in notes, goods movements, quarantine release.

Receipts of returned goods are goods-in notes against the sales credit, with the credit row id in
`purchaseOrderRowId` [DOC]. Movements into a warehouse's quarantine location are `isQuarantine`.
"""

from __future__ import annotations

from decimal import Decimal

from .common import ApiError, decimal_or_none, iso, money, parse_iso
from .orders import received_by_row
from .routing import Ctx, Reply, Router, id_set, positive_int
from .searching import Column, run_search
from .state import Account

router = Router()
# The goods-note type code of goods-in movements is UNCONFIRMED ("SC" is stock correction);
# the sandbox uses "GI" for goods-in and "QR" for quarantine release.
GOODS_IN_TYPE = "GI"
QUARANTINE_RELEASE_TYPE = "QR"


def public(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_")}


# --------------------------------------------------------------------------- warehouses
@router.route("GET", r"/warehouse-service/warehouse(?:/(?P<ids>[^/]*))?/?")
def get_warehouses(ctx: Ctx, ids: str | None = None):
    wanted = id_set(ids, required=False)
    found = [
        public(w)
        for i, w in sorted(ctx.account.warehouses.items())
        if wanted is None or i in wanted
    ]
    if wanted is not None and not found:
        raise ApiError(404, "CMNC-404", "No warehouses found")
    return found


def _warehouse(account: Account, warehouse_id: str) -> dict:
    warehouse = account.warehouses.get(int(warehouse_id))
    if warehouse is None:
        raise ApiError(404, "CMNC-404", f"Warehouse {warehouse_id} not found")
    return warehouse


@router.route("GET", r"/warehouse-service/warehouse/(?P<warehouse_id>\d+)/location/quarantine/?")
def get_quarantine_location(ctx: Ctx, warehouse_id: str):
    warehouse = _warehouse(ctx.account, warehouse_id)
    return public(ctx.account.locations[warehouse["_quarantineLocationId"]])


@router.route("GET", r"/warehouse-service/warehouse/(?P<warehouse_id>\d+)/location/default/?")
def get_default_location(ctx: Ctx, warehouse_id: str):
    # The real "Default Location" path is UNCONFIRMED.
    warehouse = _warehouse(ctx.account, warehouse_id)
    return public(ctx.account.locations[warehouse["_defaultLocationId"]])


@router.route(
    "GET", r"/warehouse-service/warehouse/(?P<warehouse_id>\d+)/location(?:/(?P<ids>[^/]*))?/?"
)
def get_locations(ctx: Ctx, warehouse_id: str, ids: str | None = None):
    _warehouse(ctx.account, warehouse_id)
    wanted = id_set(ids, required=False)
    return [
        public(loc)
        for loc_id, loc in sorted(ctx.account.locations.items())
        if loc["warehouseId"] == int(warehouse_id) and (wanted is None or loc_id in wanted)
    ]


# --------------------------------------------------------------------------- goods-in notes
def render_note(account: Account, note: dict) -> dict:
    return {
        "goodsNoteId": note["goodsNoteId"],
        "orderId": note["orderId"],
        "transfer": note["transfer"],
        "goodsNoteStatus": note["goodsNoteStatus"],
        "userBatchReference": note["userBatchReference"],
        "receivedOn": note["receivedOn"],
        "createdBy": note["createdBy"],
        "goodsMoved": [_render_move(account.goods_movements[m]) for m in note["_movementIds"]],
    }


def _render_move(move: dict) -> dict:
    return {
        "productId": move["productId"],
        "purchaseOrderRowId": move["purchaseOrderRowId"],
        "quantity": move["quantity"],
        "warehouseId": move["warehouseId"],
        "destinationLocationId": move["destinationLocationId"],
        "goodsNoteId": move["goodsNoteId"],
        "batchGoodsNoteId": move["goodsNoteId"],
        "productValue": {"currency": move["currencyCode"], "value": move["productValue"]},
        "cleared": move["isCleared"],
    }


@router.route(
    "GET", r"/warehouse-service/order/(?P<orders>[^/]+)/goods-note/goods-in(?:/(?P<notes>[^/]*))?/?"
)
def get_goods_in_notes(ctx: Ctx, orders: str, notes: str | None = None):
    order_ids = None if orders == "*" else set(id_set(orders))
    note_ids = id_set(notes, required=False)
    if order_ids is None and note_ids is None:
        raise ApiError(400, "WHSB-038", "Fetching all goods-in notes for all orders is not allowed")
    answer = {}
    for note_id, note in sorted(ctx.account.goods_in_notes.items()):
        if order_ids is not None and note["orderId"] not in order_ids:
            continue
        if note_ids is not None and note_id not in note_ids:
            continue
        answer[str(note_id)] = render_note(ctx.account, note)
    return answer


def _outstanding(account: Account, order: dict) -> dict[int, Decimal]:
    received = received_by_row(account, order["id"])
    return {
        row["id"]: Decimal(row["quantity"]) - received.get(row["id"], Decimal(0))
        for row in order["rows"]
    }


def create_goods_in_note(
    ctx: Ctx,
    order: dict,
    warehouse_id: int,
    moves: list[dict],
    batch_reference: str | None = None,
    received_on: str | None = None,
    transfer: bool = False,
) -> dict:
    """Validate and book one goods-in note; `moves` use the POST's goodsMoved field names."""
    account = ctx.account
    if warehouse_id not in account.warehouses:
        raise ApiError(400, "WHSB-023", f"Warehouse {warehouse_id} does not exist")
    if batch_reference and any(
        n["userBatchReference"] == batch_reference for n in account.goods_in_notes.values()
    ):
        raise ApiError(400, "WHSB-040", f"userBatchReference {batch_reference} is already used")
    if not moves:
        raise ApiError(400, "WHSB-041", "goodsMoved must contain at least one movement")
    rows = {row["id"]: row for row in order["rows"]}
    outstanding = _outstanding(account, order)
    checked = [
        _checked_move(account, order, warehouse_id, rows, outstanding, f"goodsMoved[{index}]", move)
        for index, move in enumerate(moves)
    ]
    note_id = account.next_id("goods-note")
    stamp = iso()
    note = {
        "goodsNoteId": note_id,
        "orderId": order["id"],
        "transfer": bool(transfer),
        "warehouseId": warehouse_id,
        "goodsNoteStatus": "CLOSED",
        "userBatchReference": batch_reference,
        "receivedOn": received_on or stamp,
        "createdOn": stamp,
        "createdBy": 4,
        "_movementIds": [],
    }
    on_hand_changed = _book_goods_in(account, order, note, checked)
    account.goods_in_notes[note_id] = note
    account.touch(order)
    ctx.emit("goods-in-note.created", [note_id])
    if on_hand_changed:
        ctx.emit("product.modified.on-hand-modified", sorted(on_hand_changed))
    return note


def _book_goods_in(account: Account, order: dict, note: dict, checked: list[tuple]) -> set[int]:
    """One goods-in movement per checked move, on the note; the products whose on-hand
    changed (stock into a quarantine location is not on hand)."""
    on_hand_changed = set()
    for product_id, quantity, row_id, location_id, currency, value in checked:
        quarantine = account.locations[location_id]["_quarantine"]
        move = _add_movement(
            account,
            product_id,
            quantity,
            note["warehouseId"],
            location_id,
            currency,
            value,
            order_id=order["id"],
            row_id=row_id,
            note_id=note["goodsNoteId"],
            type_code=GOODS_IN_TYPE,
            quarantine=quarantine,
        )
        note["_movementIds"].append(move["goodsMovementId"])
        if not quarantine:
            on_hand_changed.add(product_id)
    return on_hand_changed


def _checked_move(
    account: Account,
    order: dict,
    warehouse_id: int,
    rows: dict[int, dict],
    outstanding: dict[int, Decimal],
    where: str,
    move: object,
) -> tuple:
    """One goodsMoved entry, validated: (product, quantity, row, location, currency, value).
    Takes what it receives off `outstanding`, so two moves cannot over-receive one row."""
    if not isinstance(move, dict):
        raise ApiError(400, "WHSB-041", f"{where} must be an object")
    product_id = positive_int(move.get("productId"), f"{where}.productId", "WHSB-042")
    if product_id not in account.products:
        raise ApiError(400, "WHSB-042", f"{where}: product {product_id} does not exist")
    quantity = decimal_or_none(move.get("quantity"))
    if quantity is None or quantity <= 0 or quantity != quantity.to_integral_value():
        raise ApiError(400, "WHSB-043", f"{where}.quantity must be a positive whole number")
    row_id = move.get("purchaseOrderRowId")
    if row_id is not None:
        row_id = positive_int(row_id, f"{where}.purchaseOrderRowId", "WHSB-044")
        row = rows.get(row_id)
        if row is None or row["productId"] != product_id:
            raise ApiError(
                400,
                "WHSB-044",
                f"{where}: row {row_id} of order {order['id']} is not for product {product_id}",
            )
        if quantity > outstanding[row_id]:
            raise ApiError(
                400,
                "WHSB-045",
                f"{where}: only {outstanding[row_id]} left to receive on row {row_id}",
            )
        outstanding[row_id] -= quantity
    location_id = move.get("destinationLocationId")
    if location_id in (None, ""):
        location_id = account.warehouse_default_location(warehouse_id)
    location_id = positive_int(location_id, f"{where}.destinationLocationId", "WHSB-046")
    location = account.locations.get(location_id)
    if location is None or location["warehouseId"] != warehouse_id:
        raise ApiError(
            400,
            "WHSB-046",
            f"{where}: location {location_id} is not in warehouse {warehouse_id}",
        )
    value = move.get("productValue") if isinstance(move.get("productValue"), dict) else {}
    cost = decimal_or_none(value.get("value")) or account.products[product_id]["cost"]
    currency = value.get("currency") or order["currencyCode"]
    return (product_id, int(quantity), row_id, location_id, currency, money(cost, 4))


def _add_movement(
    account: Account,
    product_id: int,
    quantity: int,
    warehouse_id: int,
    location_id: int,
    currency: str,
    value: str,
    *,
    order_id: int | None,
    row_id: int | None,
    note_id: int | None,
    type_code: str,
    quarantine: bool,
) -> dict:
    move_id = account.next_id("goods-movement")
    move = {
        "goodsMovementId": move_id,
        "productId": product_id,
        "salesOrderRowId": None,
        "purchaseOrderRowId": row_id,
        "quantity": quantity,
        "destinationLocationId": location_id,
        "warehouseId": warehouse_id,
        "goodsNoteId": note_id,
        "productValue": value,
        "currencyCode": currency,
        "orderId": order_id,
        "isCleared": False,
        "isQuarantine": quarantine,
        "batchId": note_id,
        "goodsNoteTypeCode": type_code,
        "updatedOn": iso(),
    }
    account.goods_movements[move_id] = move
    if order_id is not None:
        account.movements_by_order.setdefault(order_id, []).append(move_id)
    key = (product_id, location_id)
    account.stock[key] = account.stock.get(key, 0) + quantity
    return move


@router.route("POST", r"/warehouse-service/order/(?P<order_id>\d+)/goods-note/goods-in/?")
def post_goods_in_note(ctx: Ctx, order_id: str):
    order = ctx.account.orders.get(int(order_id))
    if order is None:
        raise ApiError(400, "WHSB-020", f"Order {order_id} does not exist")
    body = ctx.req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "CMNC-400", "The body must be a JSON object")
    if body.get("warehouseId") in (None, ""):
        raise ApiError(400, "WHSB-023", "warehouseId is required")
    warehouse_id = positive_int(body["warehouseId"], "warehouseId", "WHSB-023")
    received_on = body.get("receivedOn")
    if received_on:
        try:
            received_on = iso(parse_iso(str(received_on)))
        except ValueError as exc:
            raise ApiError(400, "WHSB-047", "receivedOn is not an ISO 8601 date") from exc
    moves = body.get("goodsMoved")
    if not isinstance(moves, list):
        raise ApiError(400, "WHSB-041", "goodsMoved must be a list")
    note = create_goods_in_note(
        ctx,
        order,
        warehouse_id,
        moves,
        body.get("userBatchReference"),
        received_on,
        bool(body.get("transfer", False)),
    )
    return note["goodsNoteId"]


# --------------------------------------------------------------------------- quarantine release
def release_quarantine(
    ctx: Ctx, warehouse_id: int, product_id: int, quantity: int, to_location_id: int | None = None
) -> dict:
    account = ctx.account
    if warehouse_id not in account.warehouses:
        raise ApiError(404, "CMNC-404", f"Warehouse {warehouse_id} not found")
    if product_id not in account.products:
        raise ApiError(400, "WHSB-042", f"Product {product_id} does not exist")
    if quantity <= 0:
        raise ApiError(400, "WHSB-043", "quantity must be a positive whole number")
    quarantine_location = account.warehouse_quarantine_location(warehouse_id)
    target = to_location_id or account.warehouse_default_location(warehouse_id)
    location = account.locations.get(target)
    if location is None or location["warehouseId"] != warehouse_id or location["_quarantine"]:
        raise ApiError(
            400,
            "WHSB-046",
            f"Location {target} is not a sellable location of warehouse {warehouse_id}",
        )
    held = account.stock.get((product_id, quarantine_location), 0)
    if quantity > held:
        raise ApiError(
            400, "WHSB-050", f"Only {held} units of product {product_id} are in quarantine"
        )
    release_id = account.next_id("quarantine-release")
    cost = account.products[product_id]["cost"]
    currency = account.configuration["baseCurrencyCode"]
    out_move, in_move = (
        _add_movement(
            account,
            product_id,
            moved,
            warehouse_id,
            location_id,
            currency,
            money(cost, 4),
            order_id=None,
            row_id=None,
            note_id=None,
            type_code=QUARANTINE_RELEASE_TYPE,
            quarantine=quarantined,
        )
        for moved, location_id, quarantined in (
            (-quantity, quarantine_location, True),
            (quantity, target, False),
        )
    )
    release = {
        "id": release_id,
        "warehouseId": warehouse_id,
        "productId": product_id,
        "quantity": quantity,
        "toLocationId": target,
        "createdOn": iso(),
        "goodsMovementIds": [out_move["goodsMovementId"], in_move["goodsMovementId"]],
    }
    account.quarantine_releases[release_id] = release
    ctx.emit("quarantine-release.created", [release_id])
    ctx.emit("product.modified.on-hand-modified", [product_id])
    return release


@router.route("POST", r"/warehouse-service/warehouse/(?P<warehouse_id>\d+)/quarantine/release/?")
def post_quarantine_release(ctx: Ctx, warehouse_id: str):
    body = ctx.req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "CMNC-400", "The body must be a JSON object")
    product_id = positive_int(body.get("productId"), "productId", "WHSB-042")
    quantity = positive_int(body.get("quantity"), "quantity", "WHSB-043")
    to_location = body.get("toLocationId")
    to_location = positive_int(to_location, "toLocationId", "WHSB-046") if to_location else None
    release_quarantine(ctx, int(warehouse_id), product_id, quantity, to_location)
    return Reply(200, {})


# --------------------------------------------------------------------------- movement search
# Data types as listed on the Goods Movement Search page: several ids are INTEGER (one value), not
# IDSET. Whether an INTEGER filter also accepts an ID set is UNCONFIRMED; the sandbox says no.
_MOVE_COLUMNS = [
    ("goodsMovementId", "IDSET"),
    ("productId", "INTEGER"),
    ("salesOrderRowId", "IDSET"),
    ("purchaseOrderRowId", "IDSET"),
    ("quantity", "INTEGER"),
    ("destinationLocationId", "INTEGER"),
    ("warehouseId", "INTEGER"),
    ("goodsNoteId", "IDSET"),
    ("productValue", "STRING"),
    ("currencyCode", "STRING"),
    ("orderId", "INTEGER"),
    ("isCleared", "BOOLEAN"),
    ("isQuarantine", "BOOLEAN"),
    ("batchId", "INTEGER"),
    ("goodsNoteTypeCode", "STRING"),
    ("updatedOn", "PERIOD"),
]
MOVE_COLUMNS = [Column(name, kind, lambda r, n=name: r[n]) for name, kind in _MOVE_COLUMNS]


@router.route("GET", r"/warehouse-service/goods-movement-search/?")
def goods_movement_search(ctx: Ctx):
    records = [dict(m) for m in ctx.account.goods_movements.values()]
    return Reply(200, run_search(ctx.req, MOVE_COLUMNS, records))
