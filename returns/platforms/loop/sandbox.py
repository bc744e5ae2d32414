"""A Loop Returns sandbox: a real HTTP server speaking the parts of Loop's API the connector uses.

    sandbox = LoopSandbox(port=0).start()        # background thread
    adapter = get_platform("loop", api_key=sandbox.api_key, base_url=sandbox.api_url)
    rid = sandbox.add_return(order_name="#1001", lines=[{"sku": "A", "quantity": 2}])["id"]

    python -m returns.platforms.loop.sandbox --port 8901      # from a shell

Shapes follow docs/returns-platforms.md: one line item per unit, money as strings, paginated
list with `nextPageUrl`, action replies as Loop's OpenAPI documents them (success: the string
"true"; refusals with HTTP 200: `{"errors":{"message","code"}}`, `{"message"}` for a cancelled or
in-review return, `{"content"}` for cancelling an expired or flagged one), 401 envelope as
published, 300 calls/min per key (configurable), 429 without headers (Loop documents none).
Control API (no auth) under `/_sandbox/`:

    POST /_sandbox/reset                      forget everything (config kept)
    POST /_sandbox/config                     {api_key, rate_limit: [[calls, seconds]…],
                                               webhook_url, webhook_secret,
                                               allow_flagged_process, action_error_status,
                                               slow_actions: {action: seconds},
                                               throttle_next: n}
    POST /_sandbox/returns                    seed one return (see `add_return`)
    GET  /_sandbox/returns/<id>               the stored return
    PATCH /_sandbox/returns/<id>              {state?, lines?, fire?: trigger} as Loop's admin
                                              would (lines: an edit after the return was made)
    POST /_sandbox/returns/<id>/refunds       {amount, currency?, gateway?}
    GET  /_sandbox/returns/<id>/notes
    GET  /_sandbox/actions                    every write the API accepted, in order
    POST /_sandbox/destinations               {id?, name, type?, enabled?}
    POST /_sandbox/webhooks/fire              {return_id, trigger} → delivery record (synchronous)
    GET  /_sandbox/deliveries                 webhook deliveries made so far

No Django imports here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from ..sandbox_common import command_line, iso, parse_iso, parse_seed_times, touched, units
from ..sandbox_http import HttpError, Request, Response, SandboxServer, parse_limits, utcnow

API_PREFIX = "/api/v1"
DEFAULT_STATES = ("open", "closed", "expired")
ALL_STATES = ("open", "closed", "cancelled", "expired", "review")
MAX_WINDOW = timedelta(days=120)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_iso(value.strip())
    except ValueError as exc:
        raise HttpError(
            422, {"errors": {"message": f"Invalid date: {value}", "code": "VALIDATION"}}
        ) from exc


def _money(value: Any) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01")))


def _loop_error(status: int, message: str, code: str) -> HttpError:
    return HttpError(status, {"errors": {"message": message, "code": code}})


class LoopSandbox(SandboxServer):
    OPTIONS = (
        "api_key",
        "webhook_url",
        "webhook_secret",
        "allow_flagged_process",
        "action_error_status",
        "slow_actions",
        "throttle_next",
    )
    RECORD_KEY = "return_id"
    DEFAULT_EVENT = "return.updated"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        rate_limit: list[tuple[int, float]] | None = None,
        webhook_url: str = "",
        webhook_secret: str = "",
    ):
        super().__init__(host, port)
        self.api_key = api_key or "loop_" + secrets.token_hex(8)
        self.limiter.configure(rate_limit if rate_limit is not None else [(300, 60.0)])
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret or secrets.token_hex(16)
        self.allow_flagged_process = False
        # Loop answers refused actions with HTTP 200 and an error-shaped body (its OpenAPI).
        self.action_error_status = 200
        # {action: seconds}: answer that action only after this long (the change is made first).
        self.slow_actions: dict[str, float] = {}
        # Answer the next N API calls with a bare 429 (no Retry-After, no rate-limit headers).
        self.throttle_next = 0
        self.reset()

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    # -- Python helpers (the control API calls these too) -------------------------------------
    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.returns: dict[int, dict] = {}
            self.notes: dict[int, list[dict]] = {}
            self.destinations: list[dict] = []
            self._line_ids = itertools.count(50001)
            self._note_ids = itertools.count(1)
            # return id → bonus (e.g. Decimal("0.10") = 10 %) on store credit / gift cards
            self.credit_bonus: dict[int, Decimal] = {}

    def add_return(
        self,
        *,
        lines: list[dict] | None = None,
        order_name: str = "#1001",
        order_id: str | None = None,
        currency: str = "USD",
        customer: str = "customer@example.com",
        state: str = "open",
        destination_id: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        id: int | None = None,  # noqa: A002 - Loop's field name
        fire: bool = True,
        credit_bonus: str | None = None,
        **extra: Any,
    ) -> dict:
        """Seed a return. `lines`: [{sku, quantity=1, price, discount, tax, outcome, reason,
        title, provider_line_item_id}] — each unit becomes its own Loop line item.
        `credit_bonus`: e.g. "0.10" — store credit issued at processing is worth 10 % more."""
        with self.lock:
            return_id = int(id) if id is not None else next(self._ids)
            if credit_bonus is not None:
                self.credit_bonus[return_id] = Decimal(str(credit_bonus))
            created = created_at or utcnow()
            items = self._line_items(return_id, lines)
            record = {
                "id": return_id,
                "state": state,
                "created_at": iso(created),
                "updated_at": iso(updated_at or created),
                "edited_at": iso(updated_at or created),
                "order_id": 90000 + return_id,
                "order_name": order_name,
                "provider_order_id": str(order_id or 5_000_000_000 + return_id),
                "order_number": order_name.lstrip("#"),
                "customer": customer,
                "currency": currency,
                **_amounts(items, extra.pop("handling_fee", "0")),
                "carrier": "USPS",
                "tracking_number": f"9400{return_id:08d}",
                "label_status": "new",
                "label_url": None,
                "destination_id": destination_id,
                "line_items": items,
                "exchanges": [],
                "refunds": [],
            }
            record.update(extra)
            self.returns[return_id] = record
        if fire:
            self._auto_fire(return_id, "return.created")
        return json.loads(json.dumps(record))

    def _line_items(self, return_id: int, lines: list[dict] | None) -> list[dict]:
        """Loop line items, one per unit. A spec's `resolution` ("return" unless given;
        "keep": the customer keeps it) is the Draft Returns API's field (see the adapter)."""
        return [self._line_item(return_id, position, spec) for position, spec in units(lines)]

    def edit_return(self, return_id: int | str, lines: list[dict], fire: str | None = None) -> dict:
        """The return edited in Loop's admin after it was made (lines added or removed,
        quantities changed): its line items are replaced and `edited_at` moves on."""
        with self.lock:
            record = self._get(return_id)
            record["line_items"] = self._line_items(int(return_id), lines)
            self._touch(record)
        if fire:
            self._auto_fire(int(return_id), fire)
        return self.get_return(return_id)

    def get_return(self, return_id: int | str) -> dict:
        with self.lock:
            return json.loads(json.dumps(self._get(return_id)))

    def set_state(self, return_id: int | str, state: str, fire: str | None = None) -> dict:
        """Change a return as the merchant would in Loop's admin; optionally fire a webhook."""
        with self.lock:
            record = self._get(return_id)
            record["state"] = state
            self._touch(record)
        if fire:
            self._auto_fire(int(return_id), fire)
        return self.get_return(return_id)

    def add_refund(self, return_id: int | str, amount: Any, **fields: Any) -> dict:
        with self.lock:
            record = self._get(return_id)
            refund = {
                "gateway": fields.get("gateway", "shopify_payments"),
                "amount": _money(amount),
                "currency": fields.get("currency", record["currency"]),
                "provider_refund_id": str(
                    fields.get("provider_refund_id", f"rf{record['id']}{len(record['refunds'])}")
                ),
                "provider": fields.get("provider", "shopify"),
                "line_items": [i["line_item_id"] for i in record["line_items"]],
            }
            record["refunds"].append(refund)
            self._touch(record)
            return dict(refund)

    def add_destination(self, name: str, **fields: Any) -> dict:
        with self.lock:
            destination = {
                "id": int(fields.get("id", 100 + len(self.destinations) + 1)),
                "type": fields.get("type", "warehouse"),
                "name": name,
                "enabled": bool(fields.get("enabled", True)),
                "address": fields.get("address", {"city": "Bristol", "country_code": "GB"}),
            }
            self.destinations.append(destination)
            return dict(destination)

    def notes_for(self, return_id: int | str) -> list[dict]:
        with self.lock:
            return list(self.notes.get(int(return_id), []))

    def actions_for(self, return_id: int | str) -> list[str]:
        with self.lock:
            return [a["action"] for a in self.actions if a["return_id"] == int(return_id)]

    def webhook_body(self, return_id: int | str, trigger: str) -> bytes:
        """The exact bytes Loop would sign and send: compact JSON."""
        with self.lock:
            record = self._get(return_id)
            topic = trigger.split(".")[0]
            payload = {"topic": topic, "trigger": trigger, "shop_id": 42, **record}
            if trigger.startswith("return.processing"):
                payload = {
                    "topic": "return.processing",
                    "trigger": trigger,
                    "return_id": record["id"],
                    "return_state": record["state"],
                    "message": "Processing failed",
                    "source": "api",
                }
            return json.dumps(payload, separators=(",", ":")).encode()

    def sign(self, body: bytes, secret: str | None = None) -> str:
        key = (secret if secret is not None else self.webhook_secret).encode()
        return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()

    def webhook_headers(self, body: bytes) -> dict[str, str]:
        return {"X-Loop-Signature": self.sign(body)}

    # -- internals ---------------------------------------------------------------------------
    def _line_item(self, return_id: int, position: int, spec: dict) -> dict:
        """One unit of a seeded line, as Loop lists it."""
        provider_line = spec.get("provider_line_item_id") or f"{return_id}{position:03d}"
        return {
            "line_item_id": next(self._line_ids),
            "provider_line_item_id": str(provider_line),
            "product_id": spec.get("product_id", 7000 + position),
            "variant_id": spec.get("variant_id", 8000 + position),
            "sku": spec.get("sku", f"SKU-{position}"),
            "barcode": spec.get("barcode", ""),
            "title": spec.get("title", spec.get("sku", "Item")),
            "price": _price(spec.get("price", "10.00")),
            "discount": _price(spec.get("discount", "0")),
            "tax": _price(spec.get("tax", "0")),
            "refund": _price(spec.get("price", "10.00")),
            "returned_at": None,
            "exchange_variant": None,
            "outcome": spec.get("outcome", "refund"),
            "resolution": spec.get("resolution", "return"),
            "return_reason": spec.get("reason", "Too small"),
            "parent_return_reason": spec.get("parent_reason", ""),
            "return_comment": spec.get("comment", ""),
        }

    def _get(self, return_id: int | str) -> dict:
        try:
            return self.returns[int(return_id)]
        except (KeyError, ValueError):
            raise _loop_error(404, "Return not found.", "NOT_FOUND") from None

    def _touch(self, record: dict) -> None:
        record["updated_at"] = record["edited_at"] = touched(_parse_time(record["updated_at"]))

    # -- HTTP --------------------------------------------------------------------------------
    def admit(self, request: Request) -> None:
        if not request.path.startswith(API_PREFIX + "/"):
            raise HttpError(404, {"errors": {"message": "Not found.", "code": "NOT_FOUND"}})
        if request.headers.get("x-authorization") != self.api_key:
            raise HttpError(
                401,
                {
                    "error": {
                        "code": "401",
                        "http_code": "GEN-UNAUTHORIZED",
                        "message": "Unauthorized.",
                    }
                },
            )

    def rate_limited(self) -> HttpError:
        return HttpError(429, {"message": "Too Many Attempts."})

    def serve(self, request: Request) -> Response:
        path = request.path[len(API_PREFIX) :]
        with self.lock:
            return self._api(request, path)

    def _api(self, request: Request, path: str) -> Response:
        if request.method == "GET" and path == "/warehouse/return/list":
            return self._list(request)
        if request.method == "GET" and path == "/warehouse/return/details":
            return_id = request.arg("return_id")
            if not return_id:
                raise _loop_error(422, "return_id is required.", "VALIDATION")
            return Response(200, self._get(return_id))
        if request.method == "GET" and path == "/destinations":
            return Response(200, {"destinations": self.destinations})
        match = re.fullmatch(r"/warehouse/return/(\d+)/(\w+)", path)
        if match:
            return_id, action = int(match.group(1)), match.group(2)
            if request.method == "GET" and action == "notes":
                notes = self.notes.get(return_id)
                self._get(return_id)
                if not notes:
                    raise _loop_error(422, "No notes found for this return.", "NOT_FOUND")
                return Response(200, {"notes": notes})
            if request.method == "POST" and action in (
                "process",
                "flag",
                "note",
                "close",
                "cancel",
            ):
                return getattr(self, f"_action_{action}")(request, self._get(return_id))
        raise HttpError(404, {"errors": {"message": "Not found.", "code": "NOT_FOUND"}})

    def _list(self, request: Request) -> Response:
        field_name = request.arg("filter", "created_at")
        if field_name not in ("created_at", "updated_at"):
            raise _loop_error(422, "filter must be created_at or updated_at.", "VALIDATION")
        start, end = _parse_time(request.arg("from")), _parse_time(request.arg("to"))
        if start is None and end is None:
            end = utcnow()
            start = end - timedelta(hours=24)
        elif start is None:
            start = end - timedelta(hours=24)
        elif end is None:
            end = utcnow()
        if end - start > MAX_WINDOW:
            raise _loop_error(422, "The date range cannot exceed 120 days.", "VALIDATION")
        state = request.arg("state")
        if state and state not in ALL_STATES:
            raise _loop_error(422, f"Invalid state: {state}", "VALIDATION")
        states = (state,) if state else DEFAULT_STATES
        matches = sorted(
            (
                r
                for r in self.returns.values()
                if r["state"] in states and start <= _parse_time(r[field_name]) <= end
            ),
            key=lambda r: (r[field_name], r["id"]),
        )
        if request.arg("paginate") != "true":
            return Response(200, matches)
        page_size = max(1, min(int(request.arg("pageSize", "100")), 750))
        offset = int(request.arg("cursor", "0") or 0)
        page = matches[offset : offset + page_size]
        query = {k: v[-1] for k, v in request.query.items() if k != "cursor"}

        def link(cursor: int) -> str:
            return f"{self.api_url}/warehouse/return/list?{urlencode({**query, 'cursor': cursor})}"

        return Response(
            200,
            {
                "returns": page,
                "nextPageUrl": link(offset + page_size)
                if offset + page_size < len(matches)
                else None,
                "previousPageUrl": link(max(offset - page_size, 0)) if offset else None,
            },
        )

    def _refuse(self, message: str, code: str) -> HttpError:
        """An `{"errors": {message, code}}` refusal, with HTTP 200 as Loop answers it (or the
        configured `action_error_status`)."""
        return _loop_error(self.action_error_status, message, code)

    def _refuse_with(self, key: str, message: str) -> HttpError:
        """Loop's other documented refusal shapes, `{"message": …}` and `{"content": …}`."""
        return HttpError(self.action_error_status, {key: message})

    def _delay_answer(self, action: str) -> None:
        """`slow_actions`: answer after the change is made, as a slow Loop would — a client
        that timed out does not know the action went through."""
        delay = float(self.slow_actions.get(action, 0) or 0)
        if delay > 0:
            self.lock.release()
            try:
                time.sleep(delay)
            finally:
                self.lock.acquire()

    def _done(self, action: str) -> Response:
        self._delay_answer(action)
        return Response(200, "true")  # Loop's SuccessMessage: the string "true"

    def _action_process(self, request: Request, record: dict) -> Response:
        state = record["state"]
        if state == "cancelled":
            raise self._refuse_with(
                "message", "Return is cancelled and therefore cannot be processed."
            )
        if state == "review" and not self.allow_flagged_process:
            raise self._refuse_with(
                "message", "Return is review and therefore cannot be processed."
            )
        if state not in ("open", "review"):
            raise self._refuse(
                f"Return is {state} and therefore cannot be processed.", "UNPROCESSABLE_RETURN"
            )
        record["state"] = "closed"
        self._touch(record)
        self._fulfil_outcomes(record)
        self._record("process", record["id"], request.json())
        self._auto_fire(record["id"], "return.closed")
        return self._done("process")

    def _fulfil_outcomes(self, record: dict) -> None:
        """What processing gives the customer, per line outcome: a refund through the shop's
        gateway (`refunds[]`), a gift card for store credit / gift card lines (`gift_card`, with
        a bonus when configured) and an exchange order for exchange lines."""
        worth: dict[str, Decimal] = {}
        for item in record["line_items"]:
            if all(_numeric(item[k]) for k in ("price", "discount", "tax")):
                value = Decimal(item["price"]) - Decimal(item["discount"]) + Decimal(item["tax"])
                worth[item["outcome"]] = worth.get(item["outcome"], Decimal(0)) + value
        if not record["refunds"] and "refund" in worth:
            only_refunds = set(worth) == {"refund"}
            self.add_refund(record["id"], record["refund"] if only_refunds else worth["refund"])
        credit = worth.get("store_credit", Decimal(0)) + worth.get("gift_card", Decimal(0))
        if credit:
            bonus = self.credit_bonus.get(record["id"], Decimal(0))
            record["gift_card"] = _money(credit * (1 + bonus))
            record["gift_card_order_id"] = 60000 + record["id"]
            record["gift_card_order_name"] = f"GC-{record['id']}"
        if "exchange" in worth:
            record["exchange"] = True
            record["exchange_order_id"] = 70000 + record["id"]
            record["exchange_order_name"] = f"#EX{record['id']}"

    def _action_flag(self, request: Request, record: dict) -> Response:
        if request.body.strip():
            raise self._refuse("Custom parameters are not supported.", "UNEXPECTED_ERROR")
        if record["state"] not in ("open", "review"):
            raise self._refuse(
                f"Return is {record['state']} and therefore cannot be processed.",
                "UNPROCESSABLE_RETURN",
            )
        record["state"] = "review"
        self._touch(record)
        self._record("flag", record["id"])
        self._auto_fire(record["id"], "return.updated")
        return self._done("flag")

    def _action_note(self, request: Request, record: dict) -> Response:
        body = request.json(default={}) or {}
        content = body.get("content") if isinstance(body, dict) else None
        if not content or not isinstance(content, str) or len(content) >= 255:
            raise HttpError(
                422,
                {
                    "errors": {
                        "message": "Content is required and must be less than 255 characters."
                    }
                },
            )
        note = {"id": next(self._note_ids), "content": content, "created_at": iso(utcnow())}
        self.notes.setdefault(record["id"], []).append(note)
        self._record("note", record["id"], {"content": content})
        return self._done("note")

    def _action_close(self, request: Request, record: dict) -> Response:
        if record["state"] == "cancelled":
            raise self._refuse_with(
                "message", "Return is cancelled and therefore cannot be processed."
            )
        if record["state"] not in ("open", "review"):
            raise self._refuse(
                f"Return is {record['state']} and therefore cannot be processed.",
                "UNPROCESSABLE_RETURN",
            )
        record["state"] = "closed"
        self._touch(record)
        self._record("close", record["id"])
        self._auto_fire(record["id"], "return.closed")
        return self._done("close")

    def _action_cancel(self, request: Request, record: dict) -> Response:
        if record["state"] == "expired":
            raise self._refuse_with("content", "Return is expired and cannot be processed.")
        if record["state"] == "review":
            raise self._refuse_with("content", "Return is flagged and cannot be processed.")
        if record["state"] != "open":
            raise self._refuse(
                f"Return is {record['state']} and therefore cannot be processed.",
                "UNPROCESSABLE_RETURN",
            )
        record["state"] = "cancelled"
        self._touch(record)
        self._record("cancel", record["id"])
        self._auto_fire(record["id"], "return.updated")
        return self._done("cancel")

    def public_config(self) -> dict:
        return {
            "api_key": self.api_key,
            "api_url": self.api_url,
            "webhook_url": self.webhook_url,
            "webhook_secret": self.webhook_secret,
        }

    # -- control API -------------------------------------------------------------------------
    def control(self, request: Request, path: str, body: dict) -> Response:
        if request.method == "POST" and path == "/returns":
            return Response(201, self.add_return(**parse_seed_times(body, _parse_time)))
        if request.method == "POST" and path == "/destinations":
            return Response(201, self.add_destination(**body))
        if request.method == "POST" and path == "/webhooks/fire":
            return Response(
                200,
                self.fire_webhook(
                    body["return_id"], body.get("trigger", "return.updated"), body.get("url")
                ),
            )
        match = re.fullmatch(r"/returns/(\d+)(/refunds|/notes)?", path)
        if match:
            return_id, sub = match.group(1), match.group(2)
            if sub is None and request.method == "GET":
                return Response(200, self.get_return(return_id))
            if sub is None and request.method == "PATCH":
                if "lines" in body:
                    self.edit_return(return_id, body["lines"])
                if "state" in body:
                    self.set_state(return_id, body["state"], fire=body.get("fire"))
                return Response(200, self.get_return(return_id))
            if sub == "/refunds" and request.method == "POST":
                return Response(201, self.add_refund(return_id, **body))
            if sub == "/notes" and request.method == "GET":
                return Response(200, {"notes": self.notes_for(return_id)})
        raise HttpError(404, {"error": f"no sandbox route {request.method} {request.path}"})


def _numeric(value: Any) -> bool:
    try:
        Decimal(str(value))
    except ArithmeticError:
        return False
    return True


def _amounts(items: list[dict], handling_fee: Any) -> dict:
    """A return's money fields, from its line items (non-numeric seeds count as nothing)."""

    def total(field: str) -> Decimal:
        return sum((Decimal(i[field]) for i in items if _numeric(i[field])), Decimal(0))

    product, discount, tax = total("price"), total("discount"), total("tax")
    refund = product - discount + tax
    return {
        "total": _money(refund),
        "return_product_total": _money(product),
        "return_discount_total": _money(discount),
        "return_tax_total": _money(tax),
        "return_total": _money(refund),
        "return_credit_total": "0.00",
        "exchange_product_total": "0.00",
        "exchange_discount_total": "0.00",
        "exchange_tax_total": "0.00",
        "exchange_total": "0.00",
        "exchange_credit_total": "0.00",
        "gift_card": "0.00",
        "handling_fee": _money(handling_fee),
        "refund": _money(refund),
        "upsell": "0.00",
    }


def _price(value: Any) -> str:
    """Money as Loop sends it (a string); non-numeric seeds pass through for bad-input tests."""
    return _money(value) if _numeric(value) else str(value)


def main(argv: list[str] | None = None) -> None:
    parser = command_line(
        "Loop Returns sandbox server",
        port=8901,
        api_key="loop-sandbox-key",
        rate_limit="300/60",
        seed_help="seed three returns",
    )
    parser.add_argument("--webhook-secret", default="loop-sandbox-webhook-secret")
    args = parser.parse_args(argv)
    sandbox = LoopSandbox(
        args.host,
        args.port,
        api_key=args.api_key,
        rate_limit=parse_limits(args.rate_limit),
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    if args.seed_demo:
        sandbox.add_destination("Main warehouse", id=101)
        sandbox.add_return(
            order_name="#1001",
            destination_id="101",
            fire=False,
            lines=[{"sku": "TSHIRT-M", "quantity": 2, "price": "25.00"}],
        )
        sandbox.add_return(
            order_name="#1002",
            fire=False,
            lines=[{"sku": "JEANS-32", "price": "60.00", "tax": "12.00"}],
        )
        sandbox.add_return(order_name="#1003", state="review", fire=False)
    sandbox.serve_forever(
        on_ready=lambda url: print(
            f"Loop sandbox on {url}{API_PREFIX}  key={sandbox.api_key}", flush=True
        )
    )


if __name__ == "__main__":
    main()
