"""Loop Returns adapter: Loop's return JSON ↔ neutral records, and the warehouse actions."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ... import outcomes
from ..base import (
    ChangeFeed,
    Destination,
    NeutralLine,
    NeutralRefund,
    NeutralRma,
    ReceiptLine,
    ReturnsPlatform,
    WebhookHint,
    external_id_of,
    header,
)
from ..errors import MalformedPayload, ValidationError, WebhookParseError
from ..parsing import UntrustedJsonError, amount, load_untrusted_json, timestamp
from ..parsing import text as as_text
from .client import LIST_STATE_QUERIES, NOTE_MAX_CHARS, LoopClient, split_windows

SIGNATURE_HEADER = "X-Loop-Signature"
TOTAL_FIELDS = (
    "total",
    "return_product_total",
    "return_discount_total",
    "return_tax_total",
    "return_total",
    "return_credit_total",
    "exchange_total",
    "handling_fee",
    "refund",
    "gift_card",
    "upsell",
)
# Loop states in which processing / closing has nothing left to do.
DONE_STATES = frozenset({"closed"})
REVIEW_STATES = frozenset({"review", "needs review", "needs_review"})


def fit_note(content: str) -> str:
    """Loop refuses notes of 255 characters or more."""
    content = " ".join(content.split())
    if len(content) <= NOTE_MAX_CHARS:
        return content
    return content[: NOTE_MAX_CHARS - 1] + "…"


def signature(secret: str, raw_body: bytes) -> str:
    """X-Loop-Signature: base64(HMAC-SHA256(webhook secret, raw body bytes))."""
    digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# Keep-item ("returnless") lines: Loop's return-data reference documents no field for them.
# Its Draft Returns API gives each returning item a `resolution`, documented with the value
# "return" (goods come back); any other value there is read as "the customer keeps it"
# (UNCONFIRMED: "keep" is the value the sandbox uses — see docs/returns-platforms.md).
def is_kept(item: dict) -> bool:
    resolution = as_text(item.get("resolution")).strip().lower()
    return bool(resolution) and resolution != "return"


def to_neutral(data: dict) -> NeutralRma:
    """One Loop return (any of its shapes) → neutral. A body that is not in the documented shape
    raises `MalformedPayload` with the reason, never an AttributeError deep in a worker."""
    if not isinstance(data, dict):
        raise MalformedPayload(f"Loop return is not a JSON object: {type(data).__name__}")
    try:
        return _to_neutral(data)
    except (AttributeError, TypeError, ValueError) as exc:
        raise MalformedPayload(f"Loop return is not in the documented shape: {exc}"[:500]) from None


def _to_neutral(data: dict) -> NeutralRma:
    """One Loop return (list, details or webhook shape) → neutral. One line per unit."""
    lines = [
        NeutralLine(
            platform_line_id=as_text(item.get("line_item_id") or item.get("id")),
            sku=as_text(item.get("sku")).strip(),
            quantity=1,  # Loop line items carry no quantity: one per unit (UNCONFIRMED #4)
            title=as_text(item.get("title")),
            order_line_id=as_text(item.get("provider_line_item_id")),
            unit_price=amount(item.get("price")),
            discount=amount(item.get("discount")),
            tax=amount(item.get("tax")),
            tax_included=False,
            reason=as_text(item.get("return_reason") or item.get("parent_return_reason")),
            outcome=as_text(item.get("outcome")),
            keep_item=is_kept(item),
            raw=item,
        )
        for item in data.get("line_items") or []
    ]
    customer = data.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("email")
    return NeutralRma(
        platform="loop",
        external_id=as_text(data.get("id")),
        platform_status=as_text(data.get("state")),
        rma_number=as_text(data.get("id")),
        order_id=as_text(data.get("provider_order_id") or data.get("order_id")),
        order_name=as_text(data.get("order_name")),
        destination_id=as_text(data.get("destination_id")),
        currency=as_text(data.get("currency")).upper(),
        customer_email=as_text(customer),
        created_at=timestamp(data.get("created_at")),
        updated_at=timestamp(data.get("updated_at") or data.get("edited_at")),
        totals={key: amount(data.get(key)) for key in TOTAL_FIELDS if key in data},
        lines=lines,
        refunds=[_refund(r, data) for r in data.get("refunds") or []] + _issued_outcomes(data),
        raw=data,
    )


def _refund(data: dict, parent: dict) -> NeutralRefund:
    """One entry of `refunds[]` (Get Return Details): money back through the shop's payment
    gateway, i.e. to the original payment method."""
    return NeutralRefund(
        external_id=as_text(data.get("provider_refund_id") or data.get("id")),
        amount=amount(data.get("amount")),
        currency=as_text(data.get("currency") or parent.get("currency")).upper(),
        method=as_text(data.get("gateway") or data.get("provider")),
        status=as_text(data.get("status") or "success"),
        refunded_at=timestamp(data.get("created_at")),
        outcome=outcomes.ORIGINAL_PAYMENT,
        raw=data,
    )


# Loop's per-line `outcome` values (UNCONFIRMED #5: seen in Loop's published JSON schema mirror,
# not in a Loop enum) → neutral outcomes.
LINE_OUTCOMES = {
    "refund": outcomes.ORIGINAL_PAYMENT,
    "store_credit": outcomes.STORE_CREDIT,
    "gift_card": outcomes.GIFT_CARD,
    "exchange": outcomes.EXCHANGE,
}


def _line_value(item: dict):
    """What one returned unit was worth to the customer: price − discount + tax."""
    values = [amount(item.get(k)) for k in ("price", "discount", "tax")]
    if not all(v is None or isinstance(v, Decimal) for v in values):
        return None
    price, discount, tax = (v or Decimal(0) for v in values)
    return price - discount + tax


def _issued_outcomes(data: dict) -> list[NeutralRefund]:
    """Store credit / gift card and exchange, which Loop reports on the return rather than in
    `refunds[]`: the gift card issued (`gift_card`, with `gift_card_order_name`) and the
    exchange order (`exchange_order_name`, valued at the lines whose outcome is exchange).
    Only once Loop names what it issued — before that nothing has been given."""
    found = []
    line_kinds = {LINE_OUTCOMES.get(as_text(i.get("outcome")).lower()) for i in _items(data)}
    gift_value = amount(data.get("gift_card"))
    reference = as_text(data.get("gift_card_order_name") or data.get("gift_card_order_id"))
    issued = bool(reference) or as_text(data.get("state")).lower() in DONE_STATES
    if isinstance(gift_value, Decimal) and gift_value > 0 and issued:
        kind = outcomes.GIFT_CARD if outcomes.GIFT_CARD in line_kinds else outcomes.STORE_CREDIT
        found.append(
            NeutralRefund(
                external_id=f"loop-{kind}-{as_text(data.get('id'))}",
                amount=gift_value,
                currency=as_text(data.get("currency")).upper(),
                method="gift_card",
                status="success",
                refunded_at=timestamp(data.get("updated_at")),
                outcome=kind,
                reference=reference,
                raw={"gift_card": data.get("gift_card"), "gift_card_order_name": reference},
            )
        )
    exchange_order = as_text(data.get("exchange_order_name") or data.get("exchange_order_id"))
    if exchange_order:
        values = [
            _line_value(i)
            for i in _items(data)
            if LINE_OUTCOMES.get(as_text(i.get("outcome")).lower()) == outcomes.EXCHANGE
        ]
        found.append(
            NeutralRefund(
                external_id=f"loop-exchange-{as_text(data.get('id'))}",
                amount=sum((v for v in values if v is not None), Decimal(0)),
                currency=as_text(data.get("currency")).upper(),
                method="exchange",
                status="success",
                refunded_at=timestamp(data.get("updated_at")),
                outcome=outcomes.EXCHANGE,
                reference=exchange_order,
                raw={"exchange_order_name": data.get("exchange_order_name")},
            )
        )
    return found


def _items(data: dict) -> list[dict]:
    return [i for i in data.get("line_items") or [] if isinstance(i, dict)]


class LoopPlatform(ReturnsPlatform):
    kind = "loop"

    def __init__(self, *, page_size: int = 250, **kwargs: Any):
        super().__init__(**kwargs)
        self.page_size = page_size
        self.client = LoopClient(self.api_key, self.base_url, **self.client_options)

    # -- reads -------------------------------------------------------------------------------
    def fetch_changed(
        self, since: datetime, until: datetime | None = None, held: Any = None
    ) -> ChangeFeed:
        """Loop's list carries whole returns: `held` is not needed (unchanged payloads are
        skipped by intake's fingerprint)."""
        return self._listed(since, until or datetime.now(UTC), "updated_at")

    def fetch_created(self, since: datetime, until: datetime) -> ChangeFeed:
        """Loop's list filters on `created_at` itself (its default filter)."""
        return self._listed(since, until, "created_at")

    def _listed(self, since: datetime, until: datetime, window_on: str) -> ChangeFeed:
        def returns():
            seen: set[str] = set()
            for start, end in split_windows(since, until):
                for state in LIST_STATE_QUERIES:
                    for data in self.client.list_returns(
                        start, end, state=state, page_size=self.page_size, window_on=window_on
                    ):
                        key = as_text(data.get("id"))
                        if key in seen:  # on a window edge or in two state groups
                            continue
                        seen.add(key)
                        yield to_neutral(data)

        return ChangeFeed(returns())

    def fetch(self, external_id: str) -> NeutralRma:
        return to_neutral(self.client.return_details(str(external_id)))

    def refunds(self, rma: Any) -> list[NeutralRefund]:
        return self.fetch(external_id_of(rma)).refunds

    def list_destinations(self) -> list[Destination]:
        return [
            Destination(
                id=as_text(d.get("id")),
                name=as_text(d.get("name")),
                kind=as_text(d.get("type")),
                enabled=bool(d.get("enabled", True)),
                raw=d,
            )
            for d in self.client.destinations()
        ]

    # -- writes ------------------------------------------------------------------------------
    def _state(self, return_id: str) -> str:
        return as_text(self.client.return_details(return_id).get("state")).lower()

    def process(self, rma: Any) -> None:
        """Queue processing. Loop refuses a return that is already closed: for our retries that
        is success, so the state is checked before the refusal is passed on."""
        return_id = external_id_of(rma)
        try:
            self.client.process(return_id)
        except ValidationError:
            # Refused in any documented shape: success only if the return is already closed
            # (our own earlier call got through, e.g. its answer came after our timeout).
            if self._state(return_id) in DONE_STATES:
                return
            raise

    def flag(self, rma: Any, reason: str) -> None:
        """Flag (no body accepted) and write the reason as a note."""
        return_id = external_id_of(rma)
        try:
            self.client.flag(return_id)
        except ValidationError:
            if self._state(return_id) not in REVIEW_STATES:
                raise
        if reason:
            self.client.add_note(return_id, fit_note(f"Flagged by Brightpearl connector: {reason}"))

    def add_note(self, rma: Any, text: str) -> None:
        self.client.add_note(external_id_of(rma), fit_note(text))

    def close(self, rma: Any) -> None:
        return_id = external_id_of(rma)
        try:
            self.client.close(return_id)
        except ValidationError:
            if self._state(return_id) not in DONE_STATES:
                raise

    def mark_received(self, rma: Any, lines: Sequence[ReceiptLine]) -> bool:
        """Loop has no "received" write: the warehouse answers with process or flag."""
        return False

    # -- webhooks ----------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> bool:
        given = header(headers, SIGNATURE_HEADER)
        if not self.webhook_secret or not given:
            return False
        expected = signature(self.webhook_secret, raw_body)
        return hmac.compare_digest(expected.encode(), given.strip().encode())

    def parse_webhook(self, raw_body: bytes) -> WebhookHint:
        try:
            payload = load_untrusted_json(raw_body)
        except UntrustedJsonError as exc:
            raise WebhookParseError(f"Loop webhook: {exc}") from None
        if not isinstance(payload, dict):
            raise WebhookParseError("Loop webhook body is not a JSON object")
        return_id = as_text(payload.get("return_id") or payload.get("id"))
        if not return_id:
            raise WebhookParseError("Loop webhook has no return id")
        event = as_text(payload.get("trigger") or payload.get("topic"))
        return WebhookHint(event, return_id, dedupe_key(payload, raw_body))


def dedupe_key(payload: dict, raw_body: bytes) -> str:
    """Loop sends no delivery ID: (return id, trigger, edited_at/updated_at) names one change —
    plus the state, since timestamps have one-second precision; without a timestamp the body's
    hash does (a retry repeats the body byte for byte)."""
    return_id = as_text(payload.get("return_id") or payload.get("id"))
    trigger = as_text(payload.get("trigger") or payload.get("topic"))
    stamp = as_text(payload.get("edited_at") or payload.get("updated_at"))
    if not stamp:
        return f"loop:{return_id}:{trigger}:sha256:{hashlib.sha256(raw_body).hexdigest()[:32]}"
    state = as_text(payload.get("state") or payload.get("return_state"))
    return f"loop:{return_id}:{trigger}:{stamp}:{state}"
