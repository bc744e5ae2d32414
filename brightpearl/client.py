"""``BrightpearlClient``: one object per Brightpearl account, with the connector's operations.

Operations follow the real API paths (see /work/shared/brightpearl-api.md); each returns the
unwrapped ``response`` in the shape Brightpearl gives it, except where noted (ID-keyed maps get
int keys, searches yield dicts). Batched GETs split ID sets into calls of at most 200 IDs and
compress consecutive IDs into ranges. Everything about sending (auth, throttling, retries,
errors) lives in :mod:`brightpearl.http`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from .auth import Auth, OAuthAuth, TokenCallback
from .errors import (
    MalformedResponseError,
    NotFoundError,
    PaymentMethodNotFoundError,
)
from .http import ApiResponse, Timeout, Transport
from .idset import MAX_IDS_PER_CALL, chunk_ids, format_id_set
from .search import build_search_params, iter_search
from .throttle import Lane, MemoryThrottleStore, Throttle, ThrottleStore

logger = logging.getLogger("brightpearl.client")

DEFAULT_BASE_URL_TEMPLATE = "https://{datacentre}.brightpearlconnect.com/public-api/{account}"
DEFAULT_DATACENTRE = "euw1"

# Order type ids from GET /order-service/order-type [DOC]: 1 SO, 2 PO, 3 SC, 4 PC.
ORDER_TYPE_SALES_ORDER = 1
ORDER_TYPE_SALES_CREDIT = 3


# A datacentre is a short lowercase code (euw1, use1): it becomes part of the API host name,
# so anything else could point the account token at another host.
DATACENTRE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")


def format_template(template: str, *, account: str, datacentre: str | None = None) -> str:
    """Fill ``{account}`` and ``{datacentre}`` in a URL template.

    The host comes only from the template: the account is percent-encoded as one path segment
    and the datacentre must be a plain code (``ValueError`` otherwise), whatever created the
    connection (admin form, shell, command). A template without ``{datacentre}`` (sandbox) is
    fine; a template that needs one when none is given raises ``ValueError``.
    """
    url = template.replace("{account}", quote(account, safe=""))
    if "{datacentre}" in url:
        if not datacentre:
            raise ValueError(f"URL template {template!r} needs a datacentre")
        if not DATACENTRE_RE.fullmatch(datacentre):
            raise ValueError(
                f"datacentre {datacentre!r} is not a Brightpearl datacentre code (e.g. euw1)"
            )
        url = url.replace("{datacentre}", datacentre)
    return url


def _as_int(value: Any, what: str, response: ApiResponse, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedResponseError(
            f"expected the new {what} id, got {type(value).__name__}",
            status=response.status,
            ruid=response.ruid,
            path=path,
        )
    try:
        return int(value)
    except ValueError:
        raise MalformedResponseError(
            f"expected the new {what} id, got {value!r}",
            status=response.status,
            ruid=response.ruid,
            path=path,
        ) from None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def pick_payment_method_code(
    payment_methods: Iterable[Mapping[str, Any]], bank_nominal_code: str, currency: str
) -> str:
    """Choose the payment method whose bank account is ``bank_nominal_code`` for ``currency``.

    Customer Payment POST wants a payment method *code*, while merchants think in bank nominal
    codes (brightpearl-api.md §7.2). Active methods win; among several, the lowest id (stable
    across runs). Raises :class:`PaymentMethodNotFoundError` when none matches.
    """
    nominal = str(bank_nominal_code).strip()
    cur = currency.strip().upper()
    matches: list[tuple[bool, int, str]] = []
    for method in payment_methods:
        for account in method.get("bankAccounts") or []:
            if (
                str(account.get("bankAccountNominalCode", "")).strip() == nominal
                and str(account.get("currencyIsoCode", "")).strip().upper() == cur
                and method.get("code")
            ):
                active = method.get("isActive", True) is not False
                matches.append((not active, int(method.get("id") or 0), str(method["code"])))
                break
    if not matches:
        raise PaymentMethodNotFoundError(
            f"no payment method uses bank nominal {nominal} for {cur}; link one in Brightpearl "
            "(Settings › Accounting › Payment methods)"
        )
    matches.sort()
    return matches[0][2]


def _token_url(
    auth: Auth, token_url: str | None, account: str, datacentre: str | None
) -> str | None:
    """The account's token endpoint (given, or the OAuth credentials' own), its placeholders
    filled in; OAuth credentials are pointed at it."""
    raw = token_url or getattr(auth, "token_url", None)
    resolved = format_template(raw, account=account, datacentre=datacentre) if raw else None
    if isinstance(auth, OAuthAuth) and resolved:
        auth.token_url = resolved
    return resolved


class BrightpearlClient:
    """A client for one Brightpearl account.

    Args:
        account: the account code (login id, e.g. ``"store-name"``).
        auth: :class:`~brightpearl.auth.PrivateAppAuth`, :class:`~brightpearl.auth.StaffAuth`
            or :class:`~brightpearl.auth.OAuthAuth`.
        datacentre: fills ``{datacentre}`` in the template (default ``euw1``).
        base_url_template: ``https://{datacentre}.brightpearlconnect.com/public-api/{account}``
            by default; with OAuth use the ``api_domain`` the token endpoint returned.
        timeout: seconds, or ``(connect, read)``; applies to every call.
        throttle_store: where the account's budget lives (default: a private
            :class:`MemoryThrottleStore`; use :class:`RedisThrottleStore` across processes).
        throttle_key: key in the store (default: API host + account).
        budget, window_seconds: client-side budget estimate (Brightpearl: 200 per rolling 60 s).
        low_remaining: when ``brightpearl-requests-remaining`` is at or below this, pace calls.
        max_throttle_wait: cap on any single throttle sleep (seconds) — small in tests.
        max_throttle_retries: how many 503s one call may wait out before ThrottledError.
        max_throttle_block: wait at most this long for budget; longer raises BudgetSpent
            (a Celery task then re-queues itself instead of sleeping in its slot). None: block.
        throttle_lane: whose share of the budget this client spends (:class:`Lane`): the
            interactive lane by default (the whole budget); a bulk lane (syncs, backlogs) all
            but its ``reserve`` slots of the window, paced evenly — see
            :mod:`brightpearl.throttle`.
        max_retries, retry_backoff, retry_backoff_max: GET retries on connection errors / 5xx.
        token_url: OAuth token endpoint (may contain ``{account}``/``{datacentre}``); defaults
            to ``auth.token_url``.
        on_token_refresh: called with the new tokens after a refresh — persist the rotated
            refresh token there.
        session: a ``requests.Session`` to reuse (connection pooling, test adapters).
    """

    def __init__(
        self,
        account: str,
        auth: Auth,
        *,
        datacentre: str | None = DEFAULT_DATACENTRE,
        base_url_template: str = DEFAULT_BASE_URL_TEMPLATE,
        timeout: Timeout = (5.0, 30.0),
        throttle_store: ThrottleStore | None = None,
        throttle_key: str | None = None,
        budget: int = 200,
        window_seconds: float = 60.0,
        low_remaining: int = 10,
        max_throttle_wait: float = 60.0,
        max_throttle_retries: int = 5,
        max_throttle_block: float | None = None,
        throttle_lane: Lane | None = None,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 8.0,
        token_url: str | None = None,
        on_token_refresh: TokenCallback | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not account:
            raise ValueError("account is required")
        self.account = account
        self.auth = auth
        self.base_url = format_template(base_url_template, account=account, datacentre=datacentre)
        resolved_token_url = _token_url(auth, token_url, account, datacentre)
        host = self.base_url.split("://", 1)[-1].split("/", 1)[0]
        self.throttle_store = throttle_store or MemoryThrottleStore()
        sleep_kwargs = {"sleep": sleep} if sleep is not None else {}
        self.throttle = Throttle(
            self.throttle_store,
            throttle_key or f"{host}:{account}",
            budget=budget,
            window_seconds=window_seconds,
            low_remaining=low_remaining,
            max_wait=max_throttle_wait,
            max_block_seconds=max_throttle_block,
            lane=throttle_lane or Lane(),
            **sleep_kwargs,
        )
        self._transport = Transport(
            self.base_url,
            auth,
            self.throttle,
            timeout=timeout,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            max_throttle_retries=max_throttle_retries,
            token_url=resolved_token_url,
            on_token_refresh=on_token_refresh,
            session=session,
            **sleep_kwargs,
        )

    def __repr__(self) -> str:
        return f"BrightpearlClient(account={self.account!r}, base_url={self.base_url!r})"

    # -- counters the sync engine reports per run -------------------------------------------------

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (retries, throttled attempts and token refreshes included)."""
        return self._transport.request_count

    @property
    def last_ruid(self) -> str | None:
        """``ruid`` header of the latest answer — quote it to Brightpearl support."""
        return self._transport.last_ruid

    @property
    def throttled_count(self) -> int:
        """How many 503 answers were waited out."""
        return self._transport.throttled_count

    @property
    def token_refresh_count(self) -> int:
        return self._transport.token_refresh_count

    def close(self) -> None:
        self._transport.session.close()

    def __enter__(self) -> BrightpearlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generic verbs ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        send_body: bool = False,
    ) -> ApiResponse:
        """Low-level call relative to the account's base URL (``/order-service/…``)."""
        return self._transport.request(
            method, path, params=params, json_body=json, send_body=send_body
        )

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).data

    def post(self, path: str, payload: Any = None) -> Any:
        return self.request("POST", path, json=payload, send_body=True).data

    def put(self, path: str, payload: Any = None) -> Any:
        return self.request("PUT", path, json=payload, send_body=True).data

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path).data

    def _get_batched(
        self,
        path_for: Callable[[str], str],
        ids: Iterable[int],
        *,
        size: int = MAX_IDS_PER_CALL,
        params: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """GET an ID-set resource in chunks; 404 on a chunk means "none of these exist"."""
        out: list[Any] = []
        for chunk in chunk_ids(ids, size):
            try:
                data = self.get(path_for(format_id_set(chunk)), params)
            except NotFoundError:
                continue
            out.extend(_as_list(data))
        return out

    def _get_all_or_some(self, base: str, ids: Iterable[int] | None) -> list[Any]:
        if ids is None:
            return _as_list(self.get(base))
        return self._get_batched(lambda s: f"{base}/{s}", ids)

    def search(
        self, path: str, filters: Mapping[str, Any] | None = None, *, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Iterate over a ``…-search`` resource as dicts, fetching pages lazily."""
        params = build_search_params(filters or {})
        return iter_search(lambda query: self.get(path, query), params, page_size=page_size)

    # -- account ----------------------------------------------------------------------------------

    def get_account_configuration(self) -> dict[str, Any]:
        """Account defaults (``newSalesCreditStatusId``, base currency…); the cheap test call."""
        return self.get("/integration-service/account-configuration")

    # -- orders and sales credits -----------------------------------------------------------------

    def get_orders(self, ids: Iterable[int], *, include_custom_fields: bool = False) -> list[dict]:
        """Order GET (any order type), 200 IDs per call. Missing IDs are simply absent."""
        params = (
            {"includeOptional": "customFields,nullCustomFields"} if include_custom_fields else None
        )
        return self._get_batched(lambda s: f"/order-service/order/{s}", ids, params=params)

    def get_sales_credits(self, ids: Iterable[int]) -> list[dict]:
        """Sales Credit GET; a 207 (only some exist) still returns the ones found."""
        return self._get_batched(lambda s: f"/order-service/sales-credit/{s}", ids)

    def search_orders(self, *, page_size: int | None = None, **filters: Any) -> Iterator[dict]:
        """order-search rows as dicts (``orderTypeId=3`` for credits, ``externalRef=…``, …).

        STRING filters may match partially (UNCONFIRMED): compare exact values yourself.
        """
        return self.search("/order-service/order-search", filters, page_size=page_size)

    def search_sales_orders_by_customer_refs(self, refs: Iterable[str]) -> Iterator[dict]:
        """sales-order-search rows (``salesOrderId``, ``customerRef``, ``externalRef``…) of the
        sales orders whose customer reference is one of ``refs``: the documented ``customerRefs``
        STRING_SET filter ("search for multiple customer references simultaneously"), 200 per
        call. The set's syntax is UNCONFIRMED: sent comma-separated like an ID set, so a value
        containing a comma is left out (look it up one by one). Compare values yourself."""
        wanted = sorted({r.strip() for r in refs if r and r.strip() and "," not in r})
        for start in range(0, len(wanted), MAX_IDS_PER_CALL):
            chunk = wanted[start : start + MAX_IDS_PER_CALL]
            yield from self.search("/order-service/sales-order-search", {"customerRefs": chunk})

    def find_sales_credits_by_external_ref(
        self, external_ref: str, *, installed_integration_instance_id: int | None = None
    ) -> list[dict]:
        """Credits whose ``externalRef`` equals ``external_ref`` exactly (dedupe before POST)."""
        rows = self.search_orders(
            orderTypeId=ORDER_TYPE_SALES_CREDIT,
            externalRef=external_ref,
            installedIntegrationInstanceId=installed_integration_instance_id,
        )
        return [r for r in rows if r.get("externalRef") == external_ref]

    def create_sales_credit(self, payload: Mapping[str, Any]) -> int:
        """Sales Credit POST; returns the credit id.

        A repeat with the same ``externalRef`` + ``installedIntegrationInstanceId`` is a
        duplicate (200, nothing changed). If that answer carries no id (no body, an object, or
        a text such as a "duplicate" message — the body is undocumented), the existing credit is
        looked up by ``externalRef`` so the caller always gets the id.
        """
        path = "/order-service/sales-credit"
        response = self.request("POST", path, json=dict(payload), send_body=True)
        value = response.data
        not_an_id = isinstance(value, str) and not value.strip().isdigit()
        if value is None or not_an_id or isinstance(value, dict | list):
            if isinstance(value, dict) and isinstance(value.get("id"), int):
                return int(value["id"])
            external_ref = payload.get("externalRef")
            if external_ref:
                found = self.find_sales_credits_by_external_ref(
                    external_ref,
                    installed_integration_instance_id=payload.get("installedIntegrationInstanceId"),
                )
                if found:
                    return int(found[0]["orderId"])
        return _as_int(value, "sales credit", response, path)

    def update_order_status(
        self,
        order_id: int,
        status_id: int,
        note_text: str | None = None,
        *,
        note_public: bool = False,
    ) -> None:
        """Order Status Update PUT (Brightpearl adds an order note; ours if ``note_text``)."""
        body: dict[str, Any] = {"orderStatusId": int(status_id)}
        if note_text:
            body["orderNote"] = {"text": note_text, "isPublic": note_public}
        self.put(f"/order-service/order/{int(order_id)}/status", body)

    def add_order_note(self, order_id: int, text: str, is_public: bool = False) -> int:
        """Order Note POST — the audit trail staff see on the order."""
        path = f"/order-service/order/{int(order_id)}/note"
        response = self.request(
            "POST", path, json={"text": text, "isPublic": bool(is_public)}, send_body=True
        )
        return _as_int(response.data, "order note", response, path)

    def add_order_row(self, order_id: int, row: Mapping[str, Any]) -> int:
        """Order Row POST: one row added to an existing order (a credit too); returns its ID.
        ``row`` uses the documented nesting: ``productId`` or ``productName``,
        ``quantity.magnitude``, ``rowValue.taxCode``, ``rowValue.rowNet.value``,
        ``rowValue.rowTax.value``, ``nominalCode``."""
        path = f"/order-service/order/{int(order_id)}/row"
        response = self.request("POST", path, json=dict(row), send_body=True)
        return _as_int(response.data, "order row", response, path)

    def patch_order_row(
        self, order_id: int, row_id: int, operations: Iterable[Mapping[str, Any]]
    ) -> Any:
        """Order Row PATCH (JSON Patch on ``/quantity/magnitude``, ``/rowValue/rowNet/value``,
        ``/rowValue/rowTax/value``…). Refused once the order is invoiced [DOC]."""
        path = f"/order-service/order/{int(order_id)}/row/{int(row_id)}"
        return self.request("PATCH", path, json=list(operations), send_body=True).data

    def delete_order_row(self, order_id: int, row_id: int) -> None:
        """Order Row DELETE (UNCONFIRMED in the API reference — its page is empty; the
        path is the one client libraries use, beside Order Row POST/PATCH)."""
        self.delete(f"/order-service/order/{int(order_id)}/row/{int(row_id)}")

    def search_order_notes(self, *, page_size: int | None = None, **filters: Any) -> Iterator[dict]:
        """order-note-search rows as dicts (``orderId=…``; columns ``noteId``, ``noteText``…)."""
        return self.search("/order-service/order-note-search", filters, page_size=page_size)

    def close_sales_credit(self, credit_id: int, tax_date: str | None = None) -> None:
        """Sales Credit Close: puts the credit into "invoice pending" (safe to repeat while so)."""
        body = {"taxDate": tax_date} if tax_date else {}
        self.post(f"/order-service/sales-credit/{int(credit_id)}/close", body)

    def get_order_statuses(self, ids: Iterable[int] | None = None) -> list[dict]:
        """Order statuses (all types; filter on ``orderTypeCode == "SC"`` for credits)."""
        return self._get_all_or_some("/order-service/order-status", ids)

    # -- product service --------------------------------------------------------------------------

    def get_channels(self, ids: Iterable[int] | None = None) -> list[dict]:
        return self._get_all_or_some("/product-service/channel", ids)

    def get_price_lists(self, ids: Iterable[int] | None = None) -> list[dict]:
        return self._get_all_or_some("/product-service/price-list", ids)

    def get_products(self, ids: Iterable[int]) -> list[dict]:
        """Product GET (ID set mandatory); 200 per call (product cap UNCONFIRMED, see docs)."""
        return self._get_batched(lambda s: f"/product-service/product/{s}", ids)

    def search_products(self, *, page_size: int | None = None, **filters: Any) -> Iterator[dict]:
        """product-search rows as dicts (``SKU=…``, ``channelId=…``…)."""
        return self.search("/product-service/product-search", filters, page_size=page_size)

    def find_products_by_sku(self, skus: Iterable[str]) -> dict[str, list[dict]]:
        """Map each SKU to the product-search rows whose ``SKU`` equals it exactly.

        One search per distinct SKU; an empty list means "not found", several means ambiguous.
        """
        found: dict[str, list[dict]] = {}
        for sku in dict.fromkeys(s for s in skus if s):
            rows = self.search_products(SKU=sku)
            found[sku] = [r for r in rows if str(r.get("SKU", "")) == sku]
        return found

    # -- warehouse service ------------------------------------------------------------------------

    def get_warehouses(self, ids: Iterable[int] | None = None) -> list[dict]:
        return self._get_all_or_some("/warehouse-service/warehouse", ids)

    def get_warehouse_locations(
        self, warehouse_id: int, ids: Iterable[int] | None = None
    ) -> list[dict]:
        """Locations of one warehouse (default and quarantine among them)."""
        return self._get_all_or_some(
            f"/warehouse-service/warehouse/{int(warehouse_id)}/location", ids
        )

    def get_quarantine_location(self, warehouse_id: int) -> dict | None:
        """The warehouse's quarantine location (``groupingA == "QUARANTINE"``), or ``None``.

        Uses the documented Location GET rather than the ``…/location/quarantine`` path seen
        only in third-party code.
        """
        for location in self.get_warehouse_locations(warehouse_id):
            if str(location.get("groupingA", "")).upper() == "QUARANTINE":
                return location
        return None

    def get_goods_in_notes(
        self, order_ids: Iterable[int] | None = None, note_ids: Iterable[int] | None = None
    ) -> dict[int, dict]:
        """Goods-in notes by order ID set and/or note ID set, as ``{noteId: note}``.

        Only note IDs → ``/order/*/goods-note/goods-in/{notes}``. Both None is refused
        (Brightpearl forbids "all notes for all orders").
        """
        order_list = None if order_ids is None else list(order_ids)
        note_list = None if note_ids is None else list(note_ids)
        if order_list is None and note_list is None:
            raise ValueError("give order_ids and/or note_ids")
        if (order_list is not None and not order_list) or (note_list is not None and not note_list):
            return {}
        order_chunks = (
            ["*"] if order_list is None else [format_id_set(c) for c in chunk_ids(order_list)]
        )
        note_chunks = (
            [""] if note_list is None else [format_id_set(c) for c in chunk_ids(note_list)]
        )
        notes: dict[int, dict] = {}
        for order_part in order_chunks:
            for note_part in note_chunks:
                path = f"/warehouse-service/order/{order_part}/goods-note/goods-in"
                if note_part:
                    path += f"/{note_part}"
                try:
                    data = self.get(path)
                except NotFoundError:
                    continue
                try:
                    if isinstance(data, dict):
                        for key, note in data.items():
                            notes[int(key)] = note
                    elif isinstance(data, list):
                        for note in data:
                            notes[int(note["goodsNoteId"])] = note
                    elif data is not None:
                        raise TypeError(type(data).__name__)
                except (KeyError, TypeError, ValueError) as exc:
                    raise MalformedResponseError(
                        f"goods-in notes answer is not a map of note ids: {exc!r}", path=path
                    ) from None
        return notes

    def create_goods_in_note(self, order_id: int, payload: Mapping[str, Any]) -> int:
        """Goods-in note POST against an order (a sales credit for returns); returns the note id."""
        path = f"/warehouse-service/order/{int(order_id)}/goods-note/goods-in"
        response = self.request("POST", path, json=dict(payload), send_body=True)
        return _as_int(response.data, "goods-in note", response, path)

    def search_goods_movements(
        self, *, page_size: int | None = None, **filters: Any
    ) -> Iterator[dict]:
        """goods-movement-search rows (``orderId=…``, ``goodsNoteId=…``; read ``isQuarantine``)."""
        return self.search("/warehouse-service/goods-movement-search", filters, page_size=page_size)

    # -- accounting service -----------------------------------------------------------------------

    def get_payment_methods(self) -> list[dict]:
        return _as_list(self.get("/accounting-service/payment-method"))

    def get_nominal_codes(self, ids: Iterable[int] | None = None) -> list[dict]:
        return self._get_all_or_some("/accounting-service/nominal-code", ids)

    def search_nominal_codes(
        self, *, page_size: int | None = None, **filters: Any
    ) -> Iterator[dict]:
        """nominal-code-search rows (``bank=True`` lists bank accounts)."""
        return self.search("/accounting-service/nominal-code-search", filters, page_size=page_size)

    def search_currencies(self) -> list[dict]:
        """currency-search rows: ``id``, ``code`` (ISO), ``isDefault`` (the base currency)…"""
        return list(self.search("/accounting-service/currency-search"))

    def bank_account_currency(self, bank_nominal_code: str | int) -> str | None:
        """The ISO currency of a bank account: its nominal code's ``currencyId`` (nominal-code
        GET / nominal-code-search) looked up in currency-search. None when Brightpearl does
        not say; PaymentMethodNotFoundError when the code is not a bank account."""
        nominal = str(bank_nominal_code).strip()
        banks = [r for r in self.search_nominal_codes(bank="true") if str(r.get("code")) == nominal]
        if not banks:
            raise PaymentMethodNotFoundError(f"{nominal} is not a bank nominal code in Brightpearl")
        currency_id = banks[0].get("currencyId")
        if currency_id in (None, ""):
            return None
        for currency in self.search_currencies():
            if str(currency.get("id")) == str(currency_id):
                return str(currency.get("code") or "").upper() or None
        return None

    def create_customer_payment(self, payload: Mapping[str, Any]) -> int:
        """Customer Payment POST (a refund is ``paymentType: "PAYMENT"`` on the credit).

        ``transactionRef`` + ``paymentMethodCode`` is uniqueness-checked by Brightpearl: use it
        as the idempotency key and search before re-posting after an unknown outcome.
        """
        path = "/accounting-service/customer-payment"
        response = self.request("POST", path, json=dict(payload), send_body=True)
        return _as_int(response.data, "customer payment", response, path)

    def search_customer_payments(
        self, *, page_size: int | None = None, **filters: Any
    ) -> Iterator[dict]:
        return self.search(
            "/accounting-service/customer-payment-search", filters, page_size=page_size
        )

    def resolve_payment_method_code(self, bank_nominal_code: str | int, currency: str) -> str:
        """Turn a merchant's 4-digit bank nominal code into a payment method code.

        Checks the nominal is a bank account (nominal-code-search ``bank=true``), then picks the
        payment method linked to it for ``currency`` (see :func:`pick_payment_method_code`).
        """
        nominal = str(bank_nominal_code).strip()
        banks = [r for r in self.search_nominal_codes(bank=True) if str(r.get("code")) == nominal]
        if not banks:
            raise PaymentMethodNotFoundError(f"{nominal} is not a bank nominal code in Brightpearl")
        return pick_payment_method_code(self.get_payment_methods(), nominal, currency)

    # -- webhooks ---------------------------------------------------------------------------------

    def create_webhook(self, payload: Mapping[str, Any]) -> int:
        """Webhook POST (``subscribeTo``, ``httpMethod``, ``uriTemplate``, ``bodyTemplate``…)."""
        path = "/integration-service/webhook"
        response = self.request("POST", path, json=dict(payload), send_body=True)
        return _as_int(response.data, "webhook", response, path)

    def list_webhooks(self, ids: Iterable[int] | None = None) -> list[dict]:
        return self._get_all_or_some("/integration-service/webhook", ids)

    def delete_webhook(self, webhook_id: int) -> None:
        self.delete(f"/integration-service/webhook/{int(webhook_id)}")

    def simulate_webhook(self, webhook_id: int, test_data: Mapping[str, Any]) -> Any:
        """Webhook Simulate POST: ``test_data`` maps ``${resource-id}`` etc. to values (≤10 ids)."""
        return self.post(
            f"/integration-service/webhook/{int(webhook_id)}/simulate",
            {"testData": dict(test_data)},
        )
