"""Sandbox state: accounts and everything stored in them, behind one lock.

Every handler runs with `SandboxState.lock` held, so a request sees and leaves a consistent
account. Webhook deliveries are queued while the lock is held and sent after it is released.
"""

from __future__ import annotations

import copy
import random
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from . import reference_data
from .common import ApiError, iso, now

# Order types and code tables as listed by Brightpearl (order-type, order-stock-status,
# order-shipping-status GETs).
ORDER_TYPES = {1: "SO", 2: "PO", 3: "SC", 4: "PC"}
ORDER_TYPE_IDS = {code: type_id for type_id, code in ORDER_TYPES.items()}
ORDER_TYPE_NAMES = {1: "SALES_ORDER", 2: "PURCHASE_ORDER", 3: "SALES_CREDIT", 4: "PURCHASE_CREDIT"}
STOCK_STATUS_IDS = {
    "SON": 1,
    "SOP": 2,
    "SOA": 3,
    "PON": 4,
    "POP": 5,
    "POA": 6,
    "SCN": 7,
    "SCP": 8,
    "SCA": 9,
}
SHIPPING_STATUS_IDS = {"NST": 1, "SNS": 2, "SPS": 3, "ASS": 4}
# Payment status ids are UNCONFIRMED; the sandbox numbers them in this order.
PAYMENT_STATUS_IDS = {"PAID": 1, "UNPAID": 2, "PARTIALLY_PAID": 3, "NOT_APPLICABLE": 4}

DEFAULT_BUDGET = 200
DEFAULT_WINDOW_SECONDS = 60.0
BRIGHTPEARL_VERSION = "4.95.2647"
REQUEST_LOG_SIZE = 10_000  # per account; older entries are dropped


@dataclass
class Throttle:
    """Requests per period; a period starts with its first request and lasts `window` seconds."""

    budget: int = DEFAULT_BUDGET
    window: float = DEFAULT_WINDOW_SECONDS
    period_start: float = 0.0
    used: int = 0
    # Brightpearl documents the budget headers on every answer; a 503 from a front-end proxy
    # may carry none. False: the throttle's own 503s come without them.
    headers: bool = True

    def take(self) -> tuple[bool, int, int]:
        """Count one request; return (allowed, remaining, ms until the period ends)."""
        current = time.monotonic()
        if current - self.period_start >= self.window:
            self.period_start = current
            self.used = 0
        self.used += 1
        remaining = max(self.budget - self.used, 0)
        next_period_ms = max(int((self.period_start + self.window - current) * 1000), 0)
        return self.used <= self.budget, remaining, next_period_ms


@dataclass
class Fault:
    """One injected fault. It fires on a matching request (method, path regex) with
    `probability` (None = always, drawn from its own seeded generator, so a run repeats),
    at most `times` times (None = forever)."""

    method: str | None
    path: str
    kind: str
    status: int = 500
    seconds: float = 0.0
    times: int | None = 1
    id: int = 0
    probability: float | None = None
    headers: bool = True
    seed: int | None = None
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def fires(self) -> bool:
        return self.probability is None or self.rng.random() < self.probability

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "kind": self.kind,
            "status": self.status,
            "seconds": self.seconds,
            "times": self.times,
            "probability": self.probability,
            "headers": self.headers,
            "seed": self.seed,
            "fired": self.fired,
        }


@dataclass
class OAuthState:
    dev_ref: str
    client_secret: str | None
    access_token: str
    refresh_token: str
    expires_in: int
    expires_at: float
    retired_access_tokens: set[str] = field(default_factory=set)
    codes: dict[str, str] = field(default_factory=dict)  # authorization code -> redirect_uri

    def as_dict(self) -> dict:
        return {
            "devRef": self.dev_ref,
            "accessToken": self.access_token,
            "refreshToken": self.refresh_token,
            "expiresIn": self.expires_in,
            "expiresAt": self.expires_at,
            "expired": time.time() >= self.expires_at,
        }


class Account:
    """One Brightpearl account with its reference data, documents, faults and request log."""

    def __init__(
        self,
        code: str,
        app_ref: str,
        account_token: str | None,
        staff_tokens: list[str],
        installed_integration_instance_id: int | None,
        oauth: OAuthState | None,
    ):
        self.code = code
        self.app_ref = app_ref
        self.account_token = account_token
        self.staff_tokens = list(staff_tokens)
        self.installed_integration_instance_id = installed_integration_instance_id
        self.oauth = oauth
        self.counters: dict[str, int] = {}
        self.contacts: dict[int, dict] = {}
        self.products: dict[int, dict] = {}
        self.warehouses: dict[int, dict] = {}
        self.locations: dict[int, dict] = {}
        self.order_statuses: dict[int, dict] = {}
        self.channels: dict[int, dict] = {}
        self.price_lists: dict[int, dict] = {}
        self.nominal_codes: dict[int, dict] = {}
        self.payment_methods: dict[int, dict] = {}
        self.currencies: dict[int, dict] = {}
        self.configuration: dict[str, str] = {}
        self.orders: dict[int, dict] = {}
        self.order_notes: dict[int, dict] = {}
        self.goods_in_notes: dict[int, dict] = {}
        self.goods_movements: dict[int, dict] = {}
        self.movements_by_order: dict[int, list[int]] = {}
        self.quarantine_releases: dict[int, dict] = {}
        self.stock: dict[tuple[int, int], int] = {}  # (productId, locationId) -> units
        self.customer_payments: dict[int, dict] = {}
        self.payments_by_order: dict[int, list[int]] = {}
        self.webhooks: dict[int, dict] = {}
        self.webhook_deliveries: list[dict] = []
        self.requests: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)
        self.faults: list[Fault] = []
        # Cumulative counts the request log (capped) cannot give: answers by status, faults
        # by kind, commits whose answer was lost or late.
        self.stats: Counter[str] = Counter()
        # At-least-once delivery, order not guaranteed: each delivery sent `copies` times, each
        # copy after a random delay below `max_delay` seconds (seeded).
        # The body of Brightpearl's "duplicate, 200, no changes" answer is UNCONFIRMED:
        # "id" = the existing credit's id, "empty" = no response at all, "message" = a text.
        self.duplicate_credit_answer = "id"
        self.webhook_copies = 1
        self.webhook_max_delay = 0.0
        self.webhook_rng = random.Random()
        self.throttle = Throttle()
        self.latency = 0.0  # seconds every public call waits first (benchmarks)
        self.install_default_reference_data()

    def next_id(self, kind: str, start: int = 1) -> int:
        value = max(self.counters.get(kind, start - 1) + 1, start)
        self.counters[kind] = value
        return value

    def bump_counter(self, kind: str, used: int) -> None:
        self.counters[kind] = max(self.counters.get(kind, 0), used)

    # ----------------------------------------------------------------- reference data
    def install_default_reference_data(self) -> None:
        """Statuses, channels, warehouses, price lists, nominals, payment methods, configuration
        (the defaults in `reference_data.py`)."""
        statuses = enumerate(reference_data.ORDER_STATUSES, start=1)
        for sort_order, (status_id, name, type_code, visible) in statuses:
            self.add_order_status(
                {
                    "statusId": status_id,
                    "name": name,
                    "orderTypeCode": type_code,
                    "visible": visible,
                    "sortOrder": sort_order,
                }
            )
        for price_list in reference_data.PRICE_LISTS:
            self.add_price_list(copy.deepcopy(price_list))
        for warehouse in reference_data.WAREHOUSES:
            self.add_warehouse(copy.deepcopy(warehouse))
        for channel in reference_data.CHANNELS:
            self.add_channel(copy.deepcopy(channel))
        for currency_id, code, title, rate in reference_data.CURRENCIES:
            self.add_currency({"id": currency_id, "code": code, "title": title, "rate": rate})
        for code, name, bank, currency_id in reference_data.NOMINAL_CODES:
            self.add_nominal_code(
                {"code": code, "name": name, "bank": bank, "currencyId": currency_id}
            )
        for method in reference_data.PAYMENT_METHODS:
            self.add_payment_method(copy.deepcopy(method))
        self.configuration = dict(reference_data.CONFIGURATION)

    def add_order_status(self, data: dict) -> dict:
        status_id = int(data.get("statusId") or self.next_id("order-status", 20))
        self.bump_counter("order-status", status_id)
        type_code = data.get("orderTypeCode", "SO")
        status = {
            "statusId": status_id,
            "name": data.get("name", f"Status {status_id}"),
            "orderTypeCode": type_code,
            "sortOrder": data.get("sortOrder", status_id),
            "disabled": bool(data.get("disabled", False)),
            "visible": bool(data.get("visible", True)),
            "color": data.get("color", "#A0A0A0"),
            "remindAfterDays": 0,
            "alertEmails": [],
            "batchProcess": False,
            "state": data.get("state", "OPEN"),
        }
        self.order_statuses[status_id] = status
        return status

    def add_price_list(self, data: dict) -> dict:
        list_id = int(data.get("id") or self.next_id("price-list", 3))
        self.bump_counter("price-list", list_id)
        price_list = {
            "id": list_id,
            "code": data.get("code", f"PL{list_id}"),
            "name": {"text": data.get("name", f"Price list {list_id}")},
            "currencyCode": data.get("currencyCode", "GBP"),
            "currencyId": 1,
            "priceListTypeCode": data.get("priceListTypeCode", "SELL"),
            "gross": bool(data.get("gross", False)),
        }
        self.price_lists[list_id] = price_list
        return price_list

    def add_warehouse(self, data: dict) -> dict:
        """A warehouse always gets a default location and a quarantine location."""
        warehouse_id = int(data.get("id") or self.next_id("warehouse", 4))
        self.bump_counter("warehouse", warehouse_id)
        default_location = self._add_location(warehouse_id, "A", "1", quarantine=False)
        quarantine_location = self._add_location(warehouse_id, "QUARANTINE", "Q", quarantine=True)
        warehouse = {
            "id": warehouse_id,
            "name": data.get("name", f"Warehouse {warehouse_id}"),
            "typeCode": data.get("typeCode", "OWN"),
            "typeDescription": "Own warehouse",
            "address": {"addressId": warehouse_id},
            "clickAndCollectEnabled": False,
        }
        self.warehouses[warehouse_id] = {
            **warehouse,
            "_defaultLocationId": default_location["id"],
            "_quarantineLocationId": quarantine_location["id"],
        }
        return warehouse

    def _add_location(
        self, warehouse_id: int, grouping_a: str, grouping_b: str, quarantine: bool
    ) -> dict:
        location_id = self.next_id("location")
        location = {
            "id": location_id,
            "warehouseId": warehouse_id,
            "groupingA": grouping_a,
            "groupingB": grouping_b,
            "groupingC": "",
            "groupingD": "",
            "barcode": f"LOC{location_id:05d}",
            "_quarantine": quarantine,
        }
        self.locations[location_id] = location
        return location

    def add_channel(self, data: dict) -> dict:
        channel_id = int(data.get("id") or self.next_id("channel", 3))
        self.bump_counter("channel", channel_id)
        channel = {
            "id": channel_id,
            "name": data.get("name", f"Channel {channel_id}"),
            "channelTypeId": data.get("channelTypeId", 1),
            "channelBrandId": 1,
            "defaultWarehouseId": data.get("defaultWarehouseId", 2),
            "defaultPriceListId": data.get("defaultPriceListId", 2),
            "contactGroupId": 0,
            "warehouseIds": list(data.get("warehouseIds", [data.get("defaultWarehouseId", 2)])),
            "integrationDetail": data.get("integrationDetail", {}),
        }
        self.channels[channel_id] = channel
        return channel

    def add_nominal_code(self, data: dict) -> dict:
        nominal_id = int(data.get("id") or self.next_id("nominal-code"))
        self.bump_counter("nominal-code", nominal_id)
        nominal = {
            "id": nominal_id,
            "code": str(data["code"]),
            "name": data.get("name", data["code"]),
            "type": {"id": data.get("typeId", 1)},
            "bank": bool(data.get("bank", False)),
            "expense": False,
            "discount": False,
            "editable": True,
            "active": bool(data.get("active", True)),
            "taxCode": 0,
            "chartMapCode": "",
            "reconcile": bool(data.get("bank", False)),
        }
        if nominal["bank"]:  # a bank account is in one currency (nominal-code GET docs)
            nominal["currencyId"] = int(data.get("currencyId") or 1)
        self.nominal_codes[nominal_id] = nominal
        return nominal

    def add_currency(self, data: dict) -> dict:
        """A currency as currency-search shows it (columns per the Currency Search docs)."""
        currency_id = int(data.get("id") or self.next_id("currency", 4))
        self.bump_counter("currency", currency_id)
        currency = {
            "id": currency_id,
            "title": data.get("title", data["code"]),
            "code": str(data["code"]).upper(),
            "symbol": data.get("symbol", ""),
            "exchangeRate": str(data.get("rate", "1.000000")),
            "isDefault": str(data["code"]).upper()
            == self.configuration.get("baseCurrencyCode", "GBP"),
            "exchangeRateVarianceNominalCode": data.get("varianceNominalCode", "7900"),
        }
        self.currencies[currency_id] = currency
        return currency

    def add_payment_method(self, data: dict) -> dict:
        method_id = int(data.get("id") or self.next_id("payment-method"))
        self.bump_counter("payment-method", method_id)
        method = {
            "id": method_id,
            "name": data.get("name", data["code"]),
            "code": str(data["code"]).upper(),
            "isActive": bool(data.get("isActive", True)),
            "bankAccounts": [
                {
                    "paymentMethodId": method_id,
                    "currencyIsoCode": bank["currencyIsoCode"],
                    "bankAccountNominalCode": str(bank["bankAccountNominalCode"]),
                }
                for bank in data.get("bankAccounts", [])
            ],
            "installedIntegrationId": data.get("installedIntegrationId"),
        }
        self.payment_methods[method_id] = method
        return method

    def add_contact(self, data: dict) -> dict:
        contact_id = int(data.get("id") or data.get("contactId") or self.next_id("contact", 200))
        self.bump_counter("contact", contact_id)
        contact = {
            "contactId": contact_id,
            "firstName": data.get("firstName", "Test"),
            "lastName": data.get("lastName", f"Customer {contact_id}"),
            "primaryEmail": data.get("email")
            or data.get("primaryEmail")
            or f"customer{contact_id}@example.com",
            "companyName": data.get("companyName", ""),
            "isCustomer": data.get("isCustomer", True),
            "isSupplier": data.get("isSupplier", False),
            "isStaff": data.get("isStaff", False),
            "createdOn": iso(),
        }
        self.contacts[contact_id] = contact
        return contact

    def add_product(self, data: dict) -> dict:
        product_id = int(data.get("id") or data.get("productId") or self.next_id("product", 1000))
        self.bump_counter("product", product_id)
        sku = data.get("sku") or data.get("SKU") or f"SKU-{product_id}"
        if any(p["sku"] == sku for p in self.products.values()):
            raise ApiError(400, "PRDC-012", f"A product with SKU {sku} already exists")
        product = {
            "id": product_id,
            "sku": sku,
            "name": data.get("name", f"Product {product_id}"),
            "barcode": data.get("barcode", ""),
            "ean": data.get("ean", ""),
            "stockTracked": bool(data.get("stockTracked", True)),
            "taxCode": data.get("taxCode", "T20"),
            "price": str(data.get("price", "10.00")),
            "cost": str(data.get("cost", "5.00")),
            "status": data.get("status", "LIVE"),
            "brandId": data.get("brandId", 1),
            "productTypeId": 1,
            "productGroupId": 0,
            "createdOn": iso(),
            "updatedOn": iso(),
            "channelIds": list(data.get("channelIds", [1])),
        }
        self.products[product_id] = product
        return product

    # ----------------------------------------------------------------- lookups
    def warehouse_default_location(self, warehouse_id: int) -> int:
        return self.warehouses[warehouse_id]["_defaultLocationId"]

    def warehouse_quarantine_location(self, warehouse_id: int) -> int:
        return self.warehouses[warehouse_id]["_quarantineLocationId"]

    def product_by_sku(self, sku: str) -> dict | None:
        return next((p for p in self.products.values() if p["sku"] == sku), None)

    def payment_method_by_code(self, code: str) -> dict | None:
        return next((m for m in self.payment_methods.values() if m["code"] == code), None)

    def touch(self, order: dict) -> None:
        order["updatedOn"] = iso()
        order["version"] = order.get("version", 1) + 1


class SandboxState:
    """All accounts of one sandbox; `lock` guards every read and write."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.started_on = now()

    def create_account(self, data: dict) -> Account:
        code = str(data.get("account") or "").strip()
        if not code:
            raise ApiError(400, "SBX-001", "account is required")
        oauth_data = data.get("oauth") or None
        oauth = None
        if oauth_data:
            expires_in = int(oauth_data.get("expiresIn", 3600))
            oauth = OAuthState(
                dev_ref=oauth_data.get("devRef") or "devref",
                client_secret=oauth_data.get("clientSecret"),
                access_token=oauth_data.get("accessToken") or secrets.token_urlsafe(24),
                refresh_token=oauth_data.get("refreshToken") or secrets.token_urlsafe(24),
                expires_in=expires_in,
                expires_at=time.time() + expires_in,
            )
        instance_id = data.get("installedIntegrationInstanceId")
        account = Account(
            code=code,
            app_ref=data.get("appRef") or f"{code}_app",
            account_token=data.get("accountToken"),
            staff_tokens=data.get("staffTokens") or [],
            installed_integration_instance_id=int(instance_id) if instance_id else None,
            oauth=oauth,
        )
        with self.lock:
            if code in self.accounts:
                raise ApiError(409, "SBX-002", f"account {code} exists")
            self.accounts[code] = account
        return account

    def get(self, code: str) -> Account | None:
        return self.accounts.get(code)
