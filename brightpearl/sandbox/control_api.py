"""Control API under `/_sandbox/` (docs/contract-brightpearl.md): accounts, seeding, acting as the
warehouse, inspection, faults, throttle and OAuth expiry. Plain JSON in and out, no envelope.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from .common import ApiError, Request, decimal_or_none, money
from .demo import DEMO_DATA
from .orders import change_status, new_order, received_by_row, render_order
from .routing import Ctx, Router, positive_int
from .state import Account, Fault
from .warehouse import create_goods_in_note, release_quarantine, render_note

if TYPE_CHECKING:
    from .app import SandboxApp

FAULT_KINDS = ("error", "delay", "drop", "late", "throttle")
DUPLICATE_ANSWERS = ("id", "empty", "message")


# (method, path pattern, ControlApi method), matched in this order.
ROUTES = (
    ("POST", r"/accounts/?", "create_account"),
    ("GET", r"/accounts/?", "list_accounts"),
    ("DELETE", r"/(?P<code>[^/]+)/?", "delete_account"),
    ("POST", r"/(?P<code>[^/]+)/seed/?", "seed"),
    ("POST", r"/(?P<code>[^/]+)/seed-demo/?", "seed_demo"),
    ("POST", r"/(?P<code>[^/]+)/credits/(?P<credit_id>\d+)/receive/?", "receive"),
    ("POST", r"/(?P<code>[^/]+)/quarantine-release/?", "quarantine_release"),
    ("PUT", r"/(?P<code>[^/]+)/orders/(?P<order_id>\d+)/status/?", "set_status"),
    ("GET", r"/(?P<code>[^/]+)/state/?", "get_state"),
    ("GET", r"/(?P<code>[^/]+)/requests/?", "get_requests"),
    ("DELETE", r"/(?P<code>[^/]+)/requests/?", "clear_requests"),
    ("GET", r"/(?P<code>[^/]+)/webhook-deliveries/?", "get_deliveries"),
    ("POST", r"/(?P<code>[^/]+)/webhooks/wait/?", "wait_webhooks"),
    ("POST", r"/(?P<code>[^/]+)/faults/?", "add_fault"),
    ("GET", r"/(?P<code>[^/]+)/faults/?", "list_faults"),
    ("DELETE", r"/(?P<code>[^/]+)/faults/?", "clear_faults"),
    ("PUT", r"/(?P<code>[^/]+)/throttle/?", "set_throttle"),
    ("PUT", r"/(?P<code>[^/]+)/duplicates/?", "set_duplicates"),
    ("PUT", r"/(?P<code>[^/]+)/webhook-chaos/?", "set_webhook_chaos"),
    ("GET", r"/(?P<code>[^/]+)/stats/?", "get_stats"),
    ("PUT", r"/(?P<code>[^/]+)/latency/?", "set_latency"),
    ("POST", r"/(?P<code>[^/]+)/oauth/expire/?", "expire_oauth"),
    ("GET", r"/(?P<code>[^/]+)/oauth/?", "get_oauth"),
)


def build_router(app: SandboxApp) -> Router:
    """The control API's routes, each answered by a method of one `ControlApi`."""
    api = ControlApi(app)
    router = Router()
    for method, pattern, name in ROUTES:
        router.add(method, pattern, getattr(api, name))
    return router


class ControlApi:
    """One handler per control call; each returns `(status, JSON body)`."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self.state = app.state

    def account_of(self, code: str) -> Account:
        account = self.state.get(code)
        if account is None:
            raise ApiError(404, "SBX-404", f"No sandbox account {code}")
        return account

    @staticmethod
    def body_of(req: Request) -> dict:
        body = req.json(required=False) or {}
        if not isinstance(body, dict):
            raise ApiError(400, "SBX-001", "The body must be a JSON object")
        return body

    def run_acting(self, account: Account, req: Request, action):
        """Run an action as Brightpearl staff would: under the lock, then fire webhooks."""
        with self.state.lock:
            ctx = Ctx(self.state, account, req)
            result = action(ctx)
            deliveries = self.app.webhooks.prepare(account, ctx.events)
        self.app.webhooks.send(deliveries)
        return result

    def create_account(self, req: Request):
        account = self.state.create_account(self.body_of(req))
        return 201, {
            "account": account.code,
            "appRef": account.app_ref,
            "installedIntegrationInstanceId": account.installed_integration_instance_id,
        }

    def list_accounts(self, req: Request):
        with self.state.lock:
            return 200, {"accounts": sorted(self.state.accounts)}

    def delete_account(self, req: Request, code: str):
        with self.state.lock:
            if self.state.accounts.pop(code, None) is None:
                raise ApiError(404, "SBX-404", f"No sandbox account {code}")
        return 200, {}

    def seed(self, req: Request, code: str):
        account = self.account_of(code)
        body = self.body_of(req)
        with self.state.lock:
            return 200, seed_account(account, body)

    def seed_demo(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            return 200, seed_account(account, DEMO_DATA)

    def receive(self, req: Request, code: str, credit_id: str):
        """Act as the warehouse: a goods-in note for the credit's rows (all still due, or the
        `rows` given), into stock or quarantine."""
        account = self.account_of(code)
        body = self.body_of(req)
        return 200, self.run_acting(
            account, req, lambda ctx: receive_credit(ctx, int(credit_id), body)
        )

    def quarantine_release(self, req: Request, code: str):
        account = self.account_of(code)
        body = self.body_of(req)

        def action(ctx: Ctx):
            to_location = body.get("toLocationId")
            return release_quarantine(
                ctx,
                positive_int(body.get("warehouseId"), "warehouseId", "SBX-010"),
                positive_int(body.get("productId"), "productId", "SBX-013"),
                positive_int(body.get("quantity"), "quantity", "SBX-014"),
                positive_int(to_location, "toLocationId", "SBX-010") if to_location else None,
            )

        return 200, self.run_acting(account, req, action)

    def set_status(self, req: Request, code: str, order_id: str):
        account = self.account_of(code)
        body = self.body_of(req)

        def action(ctx: Ctx):
            order = account.orders.get(int(order_id))
            if order is None:
                raise ApiError(404, "SBX-404", f"No order {order_id}")
            status_id = positive_int(body.get("statusId"), "statusId", "SBX-015")
            change_status(ctx, order, status_id, body.get("note"))
            return {"orderId": order["id"], "statusId": order["statusId"]}

        return 200, self.run_acting(account, req, action)

    def get_state(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            return 200, dump_account(account)

    def get_requests(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            return 200, {"requests": list(account.requests)}

    def clear_requests(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            account.requests.clear()
        return 200, {}

    def get_deliveries(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            return 200, {"deliveries": list(account.webhook_deliveries)}

    def wait_webhooks(self, req: Request, code: str):
        self.account_of(code)
        timeout = float(self.body_of(req).get("timeout", 10))
        return 200, {"idle": self.app.webhooks.wait_idle(timeout)}

    def add_fault(self, req: Request, code: str):
        account = self.account_of(code)
        body = self.body_of(req)
        kind = body.get("kind", "error")
        if kind not in FAULT_KINDS:
            raise ApiError(400, "SBX-020", f"kind must be one of {', '.join(FAULT_KINDS)}")
        if not body.get("path"):
            raise ApiError(400, "SBX-021", "path (a regex) is required")
        times = body.get("times", 1)
        probability = body.get("probability")
        if probability is not None:
            probability = float(probability)
            if not 0.0 <= probability <= 1.0:
                raise ApiError(400, "SBX-022", "probability must be between 0 and 1")
        try:
            re.compile(body["path"])
        except re.error as exc:
            raise ApiError(400, "SBX-021", f"path is not a valid regex: {exc}") from exc
        with self.state.lock:
            fault = Fault(
                method=body.get("method"),
                path=body["path"],
                kind=kind,
                status=int(body.get("status", 500)),
                seconds=float(body.get("seconds", 2.0)),
                times=None if times is None else int(times),
                id=account.next_id("fault"),
                probability=probability,
                headers=bool(body.get("headers", True)),
                seed=None if body.get("seed") is None else int(body["seed"]),
            )
            account.faults.append(fault)
        return 201, fault.as_dict()

    def list_faults(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            return 200, {"faults": [f.as_dict() for f in account.faults]}

    def clear_faults(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            account.faults.clear()
        return 200, {}

    def set_throttle(self, req: Request, code: str):
        account = self.account_of(code)
        body = self.body_of(req)
        with self.state.lock:
            throttle = account.throttle
            throttle.budget = int(body.get("budget", throttle.budget))
            throttle.window = float(body.get("windowSeconds", throttle.window))
            throttle.headers = bool(body.get("headers", throttle.headers))
            throttle.period_start = 0.0
            throttle.used = 0
            return 200, {
                "budget": throttle.budget,
                "windowSeconds": throttle.window,
                "headers": throttle.headers,
            }

    def set_duplicates(self, req: Request, code: str):
        account = self.account_of(code)
        shape = self.body_of(req).get("creditAnswer", "id")
        if shape not in DUPLICATE_ANSWERS:
            raise ApiError(400, "SBX-024", f"creditAnswer must be one of {DUPLICATE_ANSWERS}")
        with self.state.lock:
            account.duplicate_credit_answer = shape
        return 200, {"creditAnswer": shape}

    def set_webhook_chaos(self, req: Request, code: str):
        account = self.account_of(code)
        body = self.body_of(req)
        copies, max_delay = int(body.get("copies", 1)), float(body.get("maxDelay", 0.0))
        if not 1 <= copies <= 10 or not 0.0 <= max_delay <= 60.0:
            raise ApiError(400, "SBX-023", "copies must be 1–10 and maxDelay 0–60 seconds")
        with self.state.lock:
            account.webhook_copies, account.webhook_max_delay = copies, max_delay
            account.webhook_rng.seed(body.get("seed"))
        return 200, {"copies": copies, "maxDelay": max_delay}

    def get_stats(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            return 200, {"stats": dict(account.stats)}

    def set_latency(self, req: Request, code: str):
        account = self.account_of(code)
        seconds = float(self.body_of(req).get("seconds", 0))
        if seconds < 0:
            raise ApiError(400, "SBX-022", "seconds must not be negative")
        with self.state.lock:
            account.latency = seconds
        return 200, {"seconds": seconds}

    def expire_oauth(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            if account.oauth is None:
                raise ApiError(400, "SBX-030", "The account has no OAuth configuration")
            account.oauth.expires_at = time.time() - 1
            return 200, account.oauth.as_dict()

    def get_oauth(self, req: Request, code: str):
        account = self.account_of(code)
        with self.state.lock:
            return 200, account.oauth.as_dict() if account.oauth else {}


# ------------------------------------------------------------------------------ seeding
def seed_account(account: Account, body: dict) -> dict:
    """Create reference data and documents; every list is optional. Returns the created ids."""
    created: dict[str, list] = {}
    simple = [
        ("warehouses", account.add_warehouse, "id"),
        ("orderStatuses", account.add_order_status, "statusId"),
        ("channels", account.add_channel, "id"),
        ("priceLists", account.add_price_list, "id"),
        ("currencies", account.add_currency, "id"),
        ("nominalCodes", account.add_nominal_code, "id"),
        ("paymentMethods", account.add_payment_method, "id"),
        ("contacts", account.add_contact, "contactId"),
        ("products", account.add_product, "id"),
    ]
    for key, add, id_key in simple:
        if body.get(key):
            created[key] = [add(dict(item))[id_key] for item in body[key]]
    if body.get("orders"):
        created["orders"] = [seed_order(account, dict(item))["id"] for item in body["orders"]]
    return created


def seed_order(account: Account, data: dict) -> dict:
    type_code = data.get("orderTypeCode", "SO")
    if type_code not in ("SO", "SC", "PO", "PC"):
        raise ApiError(400, "SBX-040", f"Unknown orderTypeCode {type_code}")
    contact_id = data.get("contactId") or data.get("customerId")
    if contact_id is None and account.contacts:
        contact_id = min(account.contacts)
    if contact_id is None or int(contact_id) not in account.contacts:
        raise ApiError(400, "SBX-041", f"Contact {contact_id} does not exist (seed contacts first)")
    default_status = {"SO": "newSalesOrderStatusId", "SC": "newSalesCreditStatusId"}.get(type_code)
    status_id = int(data.get("statusId") or account.configuration.get(default_status or "", 0) or 6)
    if status_id not in account.order_statuses:
        raise ApiError(400, "SBX-042", f"Order status {status_id} does not exist")
    rows = [_seed_row(account, row) for row in data.get("rows", [])]
    currency = data.get("currencyCode") or (data.get("currency") or {}).get("code")
    fields = {
        "id": data.get("id"),
        "parentOrderId": data.get("parentOrderId") or data.get("parentId"),
        "reference": data.get("reference") or data.get("ref"),
        "externalRef": data.get("externalRef"),
        "installedIntegrationInstanceId": data.get("installedIntegrationInstanceId"),
        "statusId": status_id,
        "contactId": int(contact_id),
        "warehouseId": data.get("warehouseId", 2),
        "channelId": data.get("channelId", 1),
        "priceListId": data.get("priceListId"),
        "priceModeCode": data.get("priceModeCode"),
        "currencyCode": currency,
        "placedOn": data.get("placedOn"),
        "taxDate": data.get("taxDate"),
        "delivery": data.get("delivery"),
        "stockStatusCode": data.get("stockStatusCode"),
        "shippingStatusCode": data.get("shippingStatusCode"),
        "allocationStatusCode": data.get("allocationStatusCode"),
        "orderPaymentStatus": data.get("orderPaymentStatus"),
        "invoiceReference": data.get("invoiceReference"),
    }
    fields = {key: value for key, value in fields.items() if value is not None}
    return new_order(account, fields | {"rows": rows}, type_code)


def _seed_row(account: Account, row: dict) -> dict:
    """A seeded order row: its product by SKU or id; net from the product's price and tax at
    20 % unless given."""
    product = None
    if row.get("sku"):
        product = account.product_by_sku(row["sku"])
        if product is None:
            raise ApiError(400, "SBX-043", f"No product with SKU {row['sku']}")
    elif row.get("productId"):
        product = account.products.get(int(row["productId"]))
        if product is None:
            raise ApiError(400, "SBX-043", f"No product {row['productId']}")
    quantity = decimal_or_none(row.get("quantity", 1)) or Decimal(1)
    net = decimal_or_none(row.get("net"))
    if net is None:
        net = Decimal(product["price"] if product else "0") * quantity
    tax = decimal_or_none(row.get("tax"))
    if tax is None:
        tax = net * Decimal("0.2")
    return {
        "productId": product["id"] if product else None,
        "name": row.get("name") or (product["name"] if product else "Item"),
        "quantity": str(quantity),
        "taxCode": row.get("taxCode") or (product or {}).get("taxCode", "T20"),
        "net": money(net, 4),
        "tax": money(tax, 4),
        "nominalCode": row.get("nominalCode"),
        "externalRef": row.get("externalRef"),
    }


# ------------------------------------------------------------------------------ inspection
def dump_account(account: Account) -> dict:
    def public(record: dict) -> dict:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    return {
        "account": account.code,
        "appRef": account.app_ref,
        "installedIntegrationInstanceId": account.installed_integration_instance_id,
        "configuration": dict(account.configuration),
        "contacts": list(account.contacts.values()),
        "products": list(account.products.values()),
        "warehouses": [
            public(w)
            | {
                "defaultLocationId": w["_defaultLocationId"],
                "quarantineLocationId": w["_quarantineLocationId"],
            }
            for w in account.warehouses.values()
        ],
        "locations": [
            public(loc) | {"quarantine": loc["_quarantine"]} for loc in account.locations.values()
        ],
        "orderStatuses": list(account.order_statuses.values()),
        "channels": list(account.channels.values()),
        "priceLists": list(account.price_lists.values()),
        "nominalCodes": list(account.nominal_codes.values()),
        "paymentMethods": list(account.payment_methods.values()),
        "currencies": list(account.currencies.values()),
        "orders": [render_order(account, o) for o in account.orders.values()],
        "orderNotes": list(account.order_notes.values()),
        "goodsInNotes": [render_note(account, n) for n in account.goods_in_notes.values()],
        "goodsMovements": list(account.goods_movements.values()),
        "quarantineReleases": list(account.quarantine_releases.values()),
        "stock": [
            {"productId": p, "locationId": loc, "quantity": q}
            for (p, loc), q in account.stock.items()
        ],
        "customerPayments": list(account.customer_payments.values()),
        "webhooks": list(account.webhooks.values()),
        "webhookDeliveries": list(account.webhook_deliveries),
        "faults": [f.as_dict() for f in account.faults],
        "throttle": {
            "budget": account.throttle.budget,
            "windowSeconds": account.throttle.window,
            "used": account.throttle.used,
        },
        "oauth": account.oauth.as_dict() if account.oauth else None,
        "requestCount": len(account.requests),
    }


# ------------------------------------------------------------------------------ acting as staff
def receive_credit(ctx: Ctx, credit_id: int, body: dict) -> dict:
    """Book a goods-in note against a sales credit (the `receive` control call)."""
    account = ctx.account
    order = account.orders.get(credit_id)
    if order is None or order["orderTypeCode"] != "SC":
        raise ApiError(404, "SBX-404", f"No sales credit {credit_id}")
    warehouse_id = int(
        body.get("warehouseId")
        or order["warehouseId"]
        or account.configuration["defaultWarehouseId"]
    )
    if warehouse_id not in account.warehouses:
        raise ApiError(400, "SBX-010", f"No warehouse {warehouse_id}")
    location = (
        account.warehouse_quarantine_location(warehouse_id)
        if body.get("quarantine")
        else account.warehouse_default_location(warehouse_id)
    )
    moves = _receipt_moves(account, order, body.get("rows"), location)
    if not moves:
        raise ApiError(400, "SBX-012", f"Nothing left to receive on credit {credit_id}")
    note = create_goods_in_note(
        ctx, order, warehouse_id, moves, body.get("userBatchReference"), body.get("receivedOn")
    )
    return render_note(account, note)


def _receipt_moves(account: Account, order: dict, wanted: list | None, location: int) -> list:
    """Goods-in movements for the rows asked for; without `rows`, every stock-tracked product
    row's quantity not yet received."""
    received = received_by_row(account, order["id"])
    rows = {row["id"]: row for row in order["rows"]}
    if wanted is None:
        wanted = [
            {"rowId": row["id"], "quantity": Decimal(row["quantity"]) - received.get(row["id"], 0)}
            for row in order["rows"]
            if row["productId"] and account.products[row["productId"]]["stockTracked"]
        ]
        wanted = [w for w in wanted if w["quantity"] > 0]
    moves = []
    for item in wanted:
        row = rows.get(positive_int(item.get("rowId"), "rowId", "SBX-011"))
        if row is None or not row["productId"]:
            raise ApiError(
                400,
                "SBX-011",
                f"Row {item.get('rowId')} is not a product row of credit {order['id']}",
            )
        quantity = decimal_or_none(item.get("quantity", row["quantity"]))
        moves.append(
            {
                "productId": row["productId"],
                "purchaseOrderRowId": row["id"],
                "quantity": int(quantity) if quantity is not None else None,
                "destinationLocationId": location,
            }
        )
    return moves
