"""Loop Returns adapter: Loop's return JSON ↔ neutral records, and the warehouse actions."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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
        refunds=[_refund(r, data) for r in data.get("refunds") or []],
        raw=data,
    )


def _refund(data: dict, parent: dict) -> NeutralRefund:
    return NeutralRefund(
        external_id=as_text(data.get("provider_refund_id") or data.get("id")),
        amount=amount(data.get("amount")),
        currency=as_text(data.get("currency") or parent.get("currency")).upper(),
        method=as_text(data.get("gateway") or data.get("provider")),
        status=as_text(data.get("status") or "success"),
        refunded_at=timestamp(data.get("created_at")),
        raw=data,
    )


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
        until = until or datetime.now(UTC)

        def returns():
            seen: set[str] = set()
            for start, end in split_windows(since, until):
                for state in LIST_STATE_QUERIES:
                    for data in self.client.list_returns(
                        start, end, state=state, page_size=self.page_size
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
