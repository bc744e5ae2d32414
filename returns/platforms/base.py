"""The contract every returns-platform adapter honours, and the neutral records they produce.

Adapters speak HTTP and translate; they never touch the database and never see a
`Connection` — they get explicit credentials. The sync engine (connector) decides what to do.

Vocabulary shared by every adapter:

* **process** — everything expected arrived in good order: let the platform complete the return
  (refund / exchange / store credit). May be asynchronous; "already done" counts as success.
* **flag** — something is off (shortfall, surplus, unknown item): put the return in front of a
  human on the platform, with the reason.
* **close** — end the return without fulfilling its outcomes ("nothing came back", fraud).
* **mark_received** — tell the platform the parcel arrived, when the platform has a lever for it.
* **restocked** — the quantity put back into *sellable* stock in Brightpearl (a goods-in to a
  non-quarantine location). Neither platform exposes a per-line restock write in its API, so
  restocked quantities live only on `RmaLine.quantity_restocked`; `mark_received` reports them
  where the platform can take them and ignores them otherwise.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

# Amounts and quantities stay as the platform sent them when they cannot be parsed: the intake
# service judges them and records the problem instead of an adapter raising mid-poll.
Amount = Decimal | str | None


@dataclass
class NeutralLine:
    """One platform line as sent. Loop and ReturnGO send one line per *unit*; quantity is 1
    then, and the intake service aggregates by SKU."""

    platform_line_id: str
    sku: str = ""
    quantity: int | str = 1
    title: str = ""
    order_line_id: str = ""  # the original order's line (Shopify line item ID)
    unit_price: Amount = None
    discount: Amount = None
    tax: Amount = None
    tax_included: bool = False
    restocking_fee: Amount = None
    return_fee: Amount = None
    shipment_fee: Amount = None
    reason: str = ""
    outcome: str = ""
    keep_item: bool = False  # returnless: the customer keeps it, no goods will arrive
    raw: dict = field(default_factory=dict)


@dataclass
class NeutralRefund:
    """Something the customer got back: money to the original payment method, store credit, a
    gift card, or an exchange (``outcome``, one of returns.outcomes). ``shop_amount`` /
    ``shop_currency``: the same value in the shop's currency when the platform gives it (a
    refund in the customer's presentment currency). ``reference``: the exchange order or gift
    card it became, as the platform names it."""

    external_id: str
    amount: Amount
    currency: str = ""
    method: str = ""
    status: str = ""
    refunded_at: datetime | None = None
    outcome: str = "original_payment"
    shop_amount: Amount = None
    shop_currency: str = ""
    reference: str = ""
    raw: dict = field(default_factory=dict)


@dataclass
class NeutralRma:
    platform: str
    external_id: str
    platform_status: str
    rma_number: str = ""
    order_id: str = ""
    order_name: str = ""
    destination_id: str = ""
    currency: str = ""
    customer_email: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    totals: dict[str, Amount] = field(default_factory=dict)
    lines: list[NeutralLine] = field(default_factory=list)
    refunds: list[NeutralRefund] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    # True when `refunds` is every refund the platform has (the payload carried them all, even
    # none): nobody needs to ask the platform for them again.
    refunds_complete: bool = False


@dataclass
class ReceiptLine:
    """What Brightpearl received for one aggregated RMA line."""

    sku: str
    platform_line_ids: Sequence[str] = ()
    quantity_expected: int = 0
    quantity_received: int = 0
    quantity_restocked: int = 0


@dataclass
class Destination:
    id: str
    name: str = ""
    kind: str = ""
    enabled: bool = True
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookHint:
    """What a webhook says, before anyone trusts it: act only after re-fetching the return."""

    event_name: str
    external_id: str
    dedupe_key: str

    def __iter__(self):  # allows `event, external_id, key = adapter.parse_webhook(body)`
        return iter((self.event_name, self.external_id, self.dedupe_key))


class ChangeFeed(Iterator[NeutralRma]):
    """The returns changed since a moment. Iterate it; afterwards `max_updated_at` is the newest
    platform `updated_at` seen (None when nothing came back). The caller owns the watermark and
    should start the next poll a few minutes before it (overlap), since upserts are idempotent."""

    def __init__(self, source: Iterable[NeutralRma]):
        self._source = iter(source)
        self.max_updated_at: datetime | None = None
        self.count = 0

    def __iter__(self) -> ChangeFeed:
        return self

    def __next__(self) -> NeutralRma:
        rma = next(self._source)
        self.count += 1
        if rma.updated_at and (self.max_updated_at is None or rma.updated_at > self.max_updated_at):
            self.max_updated_at = rma.updated_at
        return rma


def external_id_of(rma: Any) -> str:
    """Adapters accept a neutral record, a `returns.Rma` row or the bare ID."""
    if isinstance(rma, str | int):
        return str(rma)
    return str(rma.external_id)


class ReturnsPlatform(abc.ABC):
    """One returns-platform account, with explicit credentials."""

    kind: str = ""
    # Top-level keys of the raw payload `fetch_changed` wants to see in `held` (only these are
    # loaded, never whole payloads); empty = the adapter does not use `held`.
    held_raw_keys: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        api_key: str,
        shop_name: str = "",
        base_url: str = "",
        webhook_secret: str = "",
        **client_options: Any,
    ):
        self.api_key = api_key
        self.shop_name = shop_name
        self.base_url = base_url
        self.webhook_secret = webhook_secret
        self.client_options = client_options

    # -- reads -------------------------------------------------------------------------------
    @abc.abstractmethod
    def fetch_changed(
        self,
        since: datetime,
        until: datetime | None = None,
        held: Callable[..., Mapping[str, dict]] | None = None,
    ) -> ChangeFeed:
        """Every return updated in [since, until] (until: now). `held(ids, keys=held_raw_keys)`
        (optional) tells the adapter what the caller already holds: external IDs → {"raw": the
        named top-level keys of the last payload taken in, "updated_at": its platform update
        time}; an adapter whose listing is only a summary may use it to leave out a return
        whose summary shows nothing new, or to bring a held copy up to date without re-reading
        it (asking for more keys for those few)."""

    def fetch_created(self, since: datetime, until: datetime) -> ChangeFeed:
        """Every return *created* in [since, until] (backfill and reconciliation windows).
        The default reads the change feed from `since` (a return created in the window was
        updated at or after its start) and keeps those created in the window; adapters whose
        platform filters by creation date override it."""
        return ChangeFeed(
            r
            for r in self.fetch_changed(since, None)
            if r.created_at is None or since <= r.created_at <= until
        )

    @abc.abstractmethod
    def fetch(self, external_id: str) -> NeutralRma:
        """The current state of one return (raises NotFound)."""

    @abc.abstractmethod
    def refunds(self, rma: Any) -> list[NeutralRefund]: ...

    @abc.abstractmethod
    def list_destinations(self) -> list[Destination]: ...

    # -- writes ------------------------------------------------------------------------------
    @abc.abstractmethod
    def process(self, rma: Any) -> None: ...

    @abc.abstractmethod
    def flag(self, rma: Any, reason: str) -> None: ...

    @abc.abstractmethod
    def add_note(self, rma: Any, text: str) -> None: ...

    @abc.abstractmethod
    def close(self, rma: Any) -> None: ...

    @abc.abstractmethod
    def mark_received(self, rma: Any, lines: Sequence[ReceiptLine]) -> bool:
        """Tell the platform goods arrived. False when the platform has no such lever."""

    # -- webhooks ----------------------------------------------------------------------------
    @abc.abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> bool: ...

    @abc.abstractmethod
    def parse_webhook(self, raw_body: bytes) -> WebhookHint: ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (Django's request.headers is; a plain dict is not)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
