"""A ReturnGO sandbox: a real HTTP server speaking the parts of ReturnGO's API the connector uses.

    sandbox = ReturnGOSandbox(port=0).start()
    adapter = get_platform("returngo", api_key=sandbox.api_key, shop_name=sandbox.shop_name,
                           base_url=sandbox.url)
    rma = sandbox.add_rma(items=[{"sku": "A", "quantity": 2, "price": "25.00"}])

    python -m returns.platforms.returngo.sandbox --port 8902

Shapes follow docs/returns-platforms.md §2: `x-api-key` + `x-shop-name` (401 / 403), `GET /rmas`
summaries with `next_cursor`, full `GET /rma/{id}` with money objects
{amount, currency, shopAmount, shopCurrency}, one item per unit, RMA and shipment status
machines (400 on an illegal transition), transactions, 100 calls/s and 2,000/day (configurable).
`GET /rmas` lists summaries only ({rmaId, status, order_name, events}, as documented): a status
change adds an event to them. `GET /transactions` rows carry no RMA ID, only `returnItemIds`
(as documented).
`PUT /rma/{id}/status` accepts {"status"} and comments accept {"htmlText"}: both UNCONFIRMED,
the sandbox mirrors the adapter's assumption. Webhooks are POSTed as {eventName, rmaId,
eventDate} (payload UNCONFIRMED) to the configured URL, which carries the secret.

Control API (no auth) under `/_sandbox/`:

    POST  /_sandbox/reset
    POST  /_sandbox/config             {api_key, shop_name, rate_limit: [[calls, seconds]…],
                                        webhook_url, shipment_moves_rma,
                                        slow_writes: {status|comment|shipment: seconds},
                                        throttle_next: n (bare 429s)}
    POST  /_sandbox/rmas               seed one RMA (see `add_rma`)
    GET   /_sandbox/rmas/<id>          the stored RMA
    PATCH /_sandbox/rmas/<id>          {status?, items?, fire?} as the merchant would
    POST  /_sandbox/rmas/<id>/transactions   {amount, type?, status?}
    GET   /_sandbox/actions            every write the API accepted
    POST  /_sandbox/webhooks/fire      {rma_id, event, url?} → delivery record
    GET   /_sandbox/deliveries

No Django imports here.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..sandbox_common import command_line, iso, parse_iso, parse_seed_times, touched, units
from ..sandbox_http import HttpError, Request, Response, SandboxServer, parse_limits, utcnow

STATUSES = ("Pending", "Approved", "Received", "Validated", "Done", "Rejected", "Canceled")
RMA_TRANSITIONS = {
    "Pending": {"Approved", "Rejected", "Canceled"},
    "Approved": {"Received", "Validated", "Done", "Canceled"},
    "Received": {"Validated", "Done", "Canceled"},
    "Validated": {"Done", "Canceled"},
    "Done": set(),
    "Rejected": {"Pending"},  # reopened from the dashboard
    "Canceled": {"Pending"},
}
SHIPMENT_TRANSITIONS = {
    "Pending": {"LabelCreated", "Shipped", "Received", "Canceled", "Validated"},
    "LabelCreated": {"Shipped", "Received", "Canceled", "Validated"},
    "Shipped": {"Received", "Canceled", "Validated"},
    "Canceled": {"Received", "Validated"},
    "Received": {"Validated"},
    "Validated": set(),
}
OPERATORS = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}


def _number(value: Any) -> Any:
    """Money amounts are JSON numbers; non-numeric seeds pass through for bad-input tests."""
    try:
        return float(Decimal(str(value)))
    except ArithmeticError:
        return value


def _money_obj(value: Any, currency: str, shop_currency: str, rate: Decimal) -> dict:
    try:
        shop = float((Decimal(str(value)) * rate).quantize(Decimal("0.01")))
    except ArithmeticError:
        shop = value
    return {
        "amount": _number(value),
        "currency": currency,
        "shopAmount": shop,
        "shopCurrency": shop_currency,
    }


def _error(status: int, message: str) -> HttpError:
    return HttpError(status, {"message": message})


class ReturnGOSandbox(SandboxServer):
    OPTIONS = (
        "api_key",
        "shop_name",
        "webhook_url",
        "shipment_moves_rma",
        "slow_writes",
        "throttle_next",
    )
    RECORD_KEY = "rma_id"
    DEFAULT_EVENT = "RMA_STATUS_UPDATED"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        shop_name: str = "sandbox-shop.myshopify.com",
        rate_limit: list[tuple[int, float]] | None = None,
        webhook_url: str = "",
    ):
        super().__init__(host, port)
        self.api_key = api_key or "rgo_" + secrets.token_hex(8)
        self.shop_name = shop_name
        self.limiter.configure(
            rate_limit if rate_limit is not None else [(100, 1.0), (2000, 86400.0)]
        )
        self.webhook_url = webhook_url
        self.shipment_moves_rma = True
        # {"status"|"comment"|"shipment": seconds}: answer that write only after this long (the
        # change is made first), as a slow ReturnGO would after the client gave up waiting.
        self.slow_writes: dict[str, float] = {}
        # Answer the next N API calls with a bare 429 (no Retry-After header).
        self.throttle_next = 0
        self.reset()

    # -- Python helpers ----------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.rmas: dict[str, dict] = {}
            self._item_ids = itertools.count(70001)
            self._shipment_ids = itertools.count(30001)
            self._tx_ids = itertools.count(40001)

    def add_rma(
        self,
        *,
        items: list[dict] | None = None,
        order_name: str = "#1001",
        order_id: str | None = None,
        status: str = "Approved",
        currency: str = "USD",
        shop_currency: str | None = None,
        exchange_rate: str = "1",
        customer_email: str = "customer@example.com",
        shipment: bool = True,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        rma_id: str | int | None = None,
        fire: bool = True,
    ) -> dict:
        """Seed an RMA. `items`: [{sku, quantity=1, price, tax, tax_included, restocking_fee,
        return_fee, shipment_fee, reason, resolution, title}] — one ReturnGO item per unit."""
        with self.lock:
            number = str(rma_id if rma_id is not None else next(self._ids))
            created = created_at or utcnow()
            rate = Decimal(exchange_rate)
            shop_currency = shop_currency or currency

            def money(value):
                return _money_obj(value, currency, shop_currency, rate)

            shipment_id = next(self._shipment_ids) if shipment else None
            rendered = self._items(number, items, money, shipment_id)
            record = {
                "rmaSummary": _summary(number, status, order_name, created),
                "orderDetails": {
                    "orderId": str(order_id or 6_000_000_000 + int(number)),
                    "order_name": order_name,
                },
                "shipments": [_shipment(number, shipment_id, customer_email)] if shipment else [],
                "items": rendered,
                "comments": [],
                "exchangeOrders": [],
                "exchangeItems": [],
                "cancellationFee": money("0"),
                "transactions": [],
                "createdAt": iso(created),
                "lastUpdated": iso(updated_at or created),
                "isOutOfPolicy": 0,
                "_currency": [currency, shop_currency, str(rate)],
            }
            self.rmas[number] = record
        if fire:
            self._auto_fire(number, "RMA_CREATED")
        return self.get_rma(number)

    def _items(self, number: str, items: list[dict] | None, money, shipment_id) -> list[dict]:
        """ReturnGO items, one per unit; `keep_item: true` in a spec gives the item ReturnGO's
        "No shipment required" return method (the customer keeps it)."""
        return [
            self._item(number, position, spec, money, shipment_id)
            for position, spec in units(items)
        ]

    def edit_rma(self, number: str | int, items: list[dict], fire: bool = True) -> dict:
        """The RMA edited in the dashboard after it was made (items added, removed, changed)."""
        with self.lock:
            record = self._get(number)
            currency, shop_currency, rate = record["_currency"]
            shipment_id = (record["shipments"] or [{}])[0].get("shipmentId")

            def money(value):
                return _money_obj(value, currency, shop_currency, Decimal(rate))

            record["items"] = self._items(str(number), items, money, shipment_id)
            self._touch(record)
        if fire:
            self._auto_fire(str(number), "RMA_STATUS_UPDATED")
        return self.get_rma(number)

    def get_rma(self, number: str | int) -> dict:
        with self.lock:
            return _public(self._get(number))

    def set_status(self, number: str | int, status: str, fire: bool = True) -> dict:
        """As the merchant would in the dashboard (no transition rules)."""
        with self.lock:
            record = self._get(number)
            if record["rmaSummary"]["status"] != status:
                _move(record, status)
            self._touch(record)
        if fire:
            self._auto_fire(str(number), "RMA_STATUS_UPDATED")
        return self.get_rma(number)

    def add_transaction(self, number: str | int, amount: Any, **fields: Any) -> dict:
        with self.lock:
            record = self._get(number)
            currency, shop_currency, rate = record["_currency"]
            money = _money_obj(amount, currency, shop_currency, Decimal(rate))
            if "currency" in fields:  # a refund in another (presentment) currency
                money["currency"] = fields["currency"]
                money["shopAmount"] = _number(fields.get("shop_amount", amount))
                money["shopCurrency"] = fields.get("shop_currency", shop_currency)
            tx = {
                "id": str(fields.get("id", next(self._tx_ids))),
                "type": fields.get("type", "RefundToPaymentMethod"),
                "externalReferenceId": fields.get("external_reference_id", "gid-refund-1"),
                "externalReferenceType": "PlatformRefundId",
                "amount": money,
                "status": fields.get("status", "Success"),
                "processor": "Shopify",
                "bankAccountDetails": None,
                "returnItemIds": fields.get(
                    "return_item_ids", [i["returnedItemId"] for i in record["items"]]
                ),
                "createdAt": iso(utcnow()),
                "lastUpdated": iso(utcnow()),
            }
            record["transactions"].append(tx)
            # The listing's summary records it (TRANSACTION_CREATED is one of ReturnGO's
            # documented webhook events; that the summary shows it too is the connector's
            # UNCONFIRMED assumption, docs/returns-platforms.md).
            record["rmaSummary"]["events"].append(_event("TRANSACTION_CREATED", tx["createdAt"]))
            self._touch(record)
            return dict(tx)

    def add_exchange_order(self, number: str | int, order_name: str, **fields: Any) -> dict:
        """The exchange order ReturnGO created for an RMA (`exchangeOrders[]`)."""
        with self.lock:
            record = self._get(number)
            order = {
                "draftOrderId": str(fields.get("draft_order_id", f"D{next(self._tx_ids)}")),
                "orderId": str(fields.get("order_id", f"O{next(self._tx_ids)}")),
                "orderName": order_name,
                "type": fields.get("type", "Exchange"),
            }
            record["exchangeOrders"].append(order)
            self._touch(record)
            return dict(order)

    def comments_for(self, number: str | int) -> list[dict]:
        with self.lock:
            return list(self._get(number)["comments"])

    def actions_for(self, number: str | int) -> list[str]:
        with self.lock:
            return [a["action"] for a in self.actions if a["rma_id"] == str(number)]

    def webhook_body(self, number: str | int, event: str) -> bytes:
        with self.lock:
            record = self._get(number)
            payload = {
                "eventName": event,
                "rmaId": record["rmaSummary"]["rmaId"],
                "eventDate": record["lastUpdated"],
                "status": record["rmaSummary"]["status"],
            }
        return json.dumps(payload, separators=(",", ":")).encode()

    # -- internals ---------------------------------------------------------------------------
    def _item(self, number: str, position: int, spec: dict, money, shipment_id: int | None) -> dict:
        """One unit of a seeded line, as ReturnGO lists it; `money(value)` is a money object."""
        line_id = spec.get("shop_line_item_id", f"{number}{position:03d}")
        item_id = next(self._item_ids)
        return {
            "shopLineItemId": str(line_id),
            "shopProductId": str(7000 + position),
            "variantId": str(8000 + position),
            "returnedItemId": str(item_id),
            "fullName": spec.get("title", spec.get("sku", "Item")),
            "productName": spec.get("title", spec.get("sku", "Item")),
            "variantName": "Default",
            "image": None,
            "sku": spec.get("sku", f"SKU-{position}"),
            "barcode": "",
            "paidPrice": money(spec.get("price", "10.00")),
            "paidTax": money(spec.get("tax", "0")),
            "taxIncluded": 1 if spec.get("tax_included") else 0,
            "returnReason": spec.get("reason", "Too small"),
            "extendedReason": spec.get("extended_reason", ""),
            "resolutionName": "Refund",
            "policyRuleName": "Default",
            "isAutoApprove": 0,
            "resolutionType": spec.get("resolution", "RefundToPaymentMethod"),
            "restockingFee": money(spec.get("restocking_fee", "0")),
            "returnFee": money(spec.get("return_fee", "0")),
            "shipmentFee": money(spec.get("shipment_fee", "0")),
            "shipmentId": shipment_id,
            "returnMethod": (
                {"type": "No shipment required", "name": "Keep the item"}
                if spec.get("keep_item")
                else {"type": "Ship with any carrier", "name": "Mail"}
            ),
            "itemValidationStatusResponse": {
                "returnedItemId": str(item_id),
                "isRestockable": False,
                "isReturned": False,
                "nonRestockableReason": None,
                "nonReturnedReason": None,
                "storeLocationId": "online",
                "lastValidationDate": None,
                "lastValidatedBy": None,
                "thirdPartyName": None,
                "userDetails": None,
            },
            "exchangeItems": [],
            "followUpQuestions": [],
        }

    def _get(self, number: str | int) -> dict:
        key = str(number)
        key = key[3:] if key.upper().startswith("RMA") else key
        try:
            return self.rmas[key]
        except KeyError:
            raise _error(404, "RMA not found") from None

    def _touch(self, record: dict) -> None:
        record["lastUpdated"] = touched(parse_iso(record["lastUpdated"]))

    # -- HTTP --------------------------------------------------------------------------------
    def admit(self, request: Request) -> None:
        if request.headers.get("x-api-key") != self.api_key:
            raise _error(401, "Unauthorized")
        if request.headers.get("x-shop-name") != self.shop_name:
            raise _error(403, "no such shop for this user")

    def rate_limited(self) -> HttpError:
        return _error(429, "Too Many Requests")

    def serve(self, request: Request) -> Response:
        with self.lock:
            response = self._api(request)
        action = {"PUT": "shipment", "POST": "comment"}.get(request.method, "")
        if request.method == "PUT" and request.path.rstrip("/").endswith("/status"):
            action = "status"
        delay = float(self.slow_writes.get(action, 0) or 0) if action else 0.0
        if delay > 0:
            time.sleep(delay)  # outside the lock: the change is already made
        return response

    def _api(self, request: Request) -> Response:
        path, method = request.path.rstrip("/"), request.method
        if method == "GET" and path == "/rmas":
            return self._list_rmas(request)
        if method == "GET" and path == "/transactions":
            return self._list_transactions(request)
        match = re.fullmatch(r"/rma/(\w+)(/status|/comment)?", path)
        if match:
            record, sub = self._get(match.group(1)), match.group(2)
            if method == "GET" and sub is None:
                return Response(200, _public(record))
            if method == "PUT" and sub == "/status":
                return self._put_status(request, record)
            if method == "POST" and sub == "/comment":
                return self._post_comment(request, record)
        match = re.fullmatch(r"/shipment/(\w+)", path)
        if match and method == "PUT":
            return self._put_shipment(request, match.group(1))
        raise _error(404, "Not Found")

    def _pagesize(self, request: Request) -> int:
        try:
            size = int(request.arg("pagesize", ""))
        except ValueError:
            raise _error(400, "pagesize is required (1-500)") from None
        if not 1 <= size <= 500:
            raise _error(400, "pagesize must be between 1 and 500")
        return size

    def _page(self, request: Request, rows: list, key: str) -> Response:
        size = self._pagesize(request)
        try:
            offset = int(request.arg("cursor") or 0)
        except ValueError:
            raise _error(400, "invalid cursor") from None
        page = rows[offset : offset + size]
        more = offset + size < len(rows)
        return Response(200, {key: page, "next_cursor": str(offset + size) if more else None})

    def _list_rmas(self, request: Request) -> Response:
        self._pagesize(request)
        rows = list(self.rmas.values())
        for field, attr in (("rma_updated_at", "lastUpdated"), ("rma_created_at", "createdAt")):
            for condition in request.args(field):  # repeated bounds are ANDed here (UNCONFIRMED)
                op, _, value = condition.partition(":")
                if op not in OPERATORS or not value:
                    raise _error(400, f"invalid {field} filter: {condition}")
                try:
                    bound = parse_iso(value)
                except ValueError:
                    raise _error(400, f"invalid date in {field}: {value}") from None
                rows = [r for r in rows if OPERATORS[op](parse_iso(r[attr]), bound)]
        if request.arg("status"):
            wanted = set(request.arg("status").split(","))
            rows = [r for r in rows if r["rmaSummary"]["status"] in wanted]
        if request.arg("order_name"):
            wanted = set(request.arg("order_name").split(","))
            rows = [r for r in rows if r["rmaSummary"]["order_name"] in wanted]
        sort = (request.arg("sort_by") or "+rma_created_at").split(",")[0].strip()
        attr = "lastUpdated" if "updated" in sort else "createdAt"
        rows.sort(
            key=lambda r: (r[attr], int(r["rmaSummary"]["rmaId"])), reverse=sort.startswith("-")
        )
        return self._page(request, [dict(r["rmaSummary"]) for r in rows], "rmas")

    def _list_transactions(self, request: Request) -> Response:
        self._pagesize(request)
        wanted = set(filter(None, (request.arg("rma_ids") or "").split(",")))
        # As documented, a listed transaction names no RMA: only its `returnItemIds`.
        rows = [
            dict(tx)
            for number, record in self.rmas.items()
            if not wanted or number in wanted
            for tx in record["transactions"]
        ]
        return self._page(request, rows, "transactions")

    def _put_status(self, request: Request, record: dict) -> Response:
        body = request.json(default={}) or {}
        status = body.get("status") if isinstance(body, dict) else None
        if status not in STATUSES:
            raise _error(400, f"invalid status: {status!r}")
        current = record["rmaSummary"]["status"]
        if status != current and status not in RMA_TRANSITIONS[current]:
            raise _error(400, f"Invalid status transition {current} -> {status}")
        if status != current:
            _move(record, status)
        self._touch(record)
        self._record("status", record["rmaSummary"]["rmaId"], body)
        self._auto_fire(record["rmaSummary"]["rmaId"], "RMA_STATUS_UPDATED")
        return Response(200, {"rmaId": record["rmaSummary"]["rmaId"], "status": status})

    def _post_comment(self, request: Request, record: dict) -> Response:
        body = request.json(default={}) or {}
        html = body.get("htmlText") if isinstance(body, dict) else None
        if not html or not isinstance(html, str):
            raise _error(400, "htmlText is required")
        record["comments"].append(
            {
                "commentType": "merchant",
                "triggeredBy": "ReturnGO API",
                "htmlText": html,
                "datetime": iso(utcnow()),
            }
        )
        self._touch(record)
        self._record("comment", record["rmaSummary"]["rmaId"], body)
        return Response(200, {"success": True})

    def _put_shipment(self, request: Request, shipment_id: str) -> Response:
        owner, shipment = None, None
        for record in self.rmas.values():
            for candidate in record["shipments"]:
                if str(candidate["shipmentId"]) == shipment_id:
                    owner, shipment = record, candidate
        if shipment is None:
            raise _error(404, "A Shipment with the given data could not be found")
        body = request.json(default={}) or {}
        status = body.get("status", shipment["status"])
        if status != shipment["status"] and status not in SHIPMENT_TRANSITIONS.get(
            shipment["status"], set()
        ):
            raise _error(400, f"Invalid status transition {shipment['status']} -> {status}")
        shipment["status"] = status
        for field in ("carrierName", "trackingNumber", "trackingURL", "labelURL"):
            if field in body:
                shipment[field] = body[field]
        number = owner["rmaSummary"]["rmaId"]
        inbound = [s for s in owner["shipments"] if not s["isOutbound"]]
        if (
            self.shipment_moves_rma
            and owner["rmaSummary"]["status"] == "Approved"
            and all(s["status"] in ("Received", "Validated") for s in inbound)
        ):
            _move(owner, "Received")
        self._touch(owner)
        self._record("shipment", number, dict(body, shipmentId=shipment["shipmentId"]))
        self._auto_fire(number, "SHIPMENT_STATUS_UPDATED")
        return Response(200, dict(shipment))

    def public_config(self) -> dict:
        return {
            "api_key": self.api_key,
            "shop_name": self.shop_name,
            "api_url": self.url,
            "webhook_url": self.webhook_url,
        }

    # -- control API -------------------------------------------------------------------------
    def control(self, request: Request, path: str, body: dict) -> Response:
        if request.method == "POST" and path == "/rmas":
            return Response(201, self.add_rma(**parse_seed_times(body, parse_iso)))
        if request.method == "POST" and path == "/webhooks/fire":
            return Response(
                200,
                self.fire_webhook(
                    body["rma_id"], body.get("event", "RMA_STATUS_UPDATED"), body.get("url")
                ),
            )
        match = re.fullmatch(r"/rmas/(\w+)(/transactions)?", path)
        if match:
            number, sub = match.group(1), match.group(2)
            if sub is None and request.method == "GET":
                return Response(200, self.get_rma(number))
            if sub is None and request.method == "PATCH":
                if "items" in body:
                    self.edit_rma(number, body["items"], fire=False)
                if "status" in body:
                    self.set_status(number, body["status"], fire=body.get("fire", True))
                return Response(200, self.get_rma(number))
            if sub and request.method == "POST":
                return Response(201, self.add_transaction(number, **body))
        raise HttpError(404, {"error": f"no sandbox route {request.method} {request.path}"})


def _event(name: str, when: str) -> dict:
    """One entry of an RMA summary's `events[]`."""
    return {
        "eventName": name,
        "eventDate": when,
        "triggeredVia": "Return Portal",
        "storeLocationId": "online",
        "userDetails": None,
    }


def _move(record: dict, status: str) -> None:
    """A status change, and the event the summary (and so the listing) shows for it. Timeline
    names seen in real data: RMA_CREATED, RMA_APPROVED; the others follow their pattern
    (UNCONFIRMED, docs/returns-platforms.md §2.5)."""
    record["rmaSummary"]["status"] = status
    record["rmaSummary"]["events"].append(_event(f"RMA_{status.upper()}", iso(utcnow())))


def _summary(number: str, status: str, order_name: str, created: datetime) -> dict:
    """What `GET /rmas` lists of an RMA, with the event of its creation."""
    return {
        "rmaId": number,
        "status": status,
        "order_name": order_name,
        "events": [_event("RMA_CREATED", iso(created))],
    }


def _shipment(number: str, shipment_id: int | None, customer_email: str) -> dict:
    """The return shipment a seeded RMA starts with."""
    address = {
        "name": "Pat Customer",
        "street1": "1 High St",
        "street2": "",
        "city": "Leeds",
        "state": "",
        "zip": "LS1 1AA",
        "country": "GB",
        "phone": "",
        "email": customer_email,
    }
    return {
        "shipmentId": shipment_id,
        "status": "Pending",
        "carrierName": "Royal Mail",
        "requestedServiceLevel": None,
        "actualServiceLevel": None,
        "trackingNumber": f"RM{number}GB",
        "trackingURL": None,
        "labelURL": None,
        "customerAddress": address,
        "returnAddress": dict(address, email=""),
        "isOutbound": False,
    }


def _public(record: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in record.items() if not k.startswith("_")}))


def main(argv: list[str] | None = None) -> None:
    parser = command_line(
        "ReturnGO sandbox server",
        port=8902,
        api_key="returngo-sandbox-key",
        rate_limit="100/1,2000/86400",
        seed_help="seed three RMAs",
        webhook_help="include the connector's secret token",
    )
    parser.add_argument("--shop-name", default="sandbox-shop.myshopify.com")
    args = parser.parse_args(argv)
    sandbox = ReturnGOSandbox(
        args.host,
        args.port,
        api_key=args.api_key,
        shop_name=args.shop_name,
        rate_limit=parse_limits(args.rate_limit),
        webhook_url=args.webhook_url,
    )
    if args.seed_demo:
        sandbox.add_rma(
            order_name="#2001",
            fire=False,
            items=[{"sku": "TSHIRT-M", "quantity": 2, "price": "25.00"}],
        )
        sandbox.add_rma(
            order_name="#2002",
            status="Pending",
            fire=False,
            items=[{"sku": "JEANS-32", "price": "60.00", "tax": "10.00", "tax_included": True}],
        )
        sandbox.add_rma(order_name="#2003", status="Done", fire=False)
    sandbox.serve_forever(
        on_ready=lambda url: print(
            f"ReturnGO sandbox on {url}  key={sandbox.api_key} shop={sandbox.shop_name}",
            flush=True,
        )
    )


if __name__ == "__main__":
    main()
