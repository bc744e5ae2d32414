"""Check a connection against Brightpearl itself, field by field.

Staff see one line per setting: do the credentials work, is the status ID a sales-credit status,
does the channel exist, does each mapped warehouse exist, is the refund method code a bank account
with a payment method.
"""

from dataclasses import asdict, dataclass, field

from django.utils import timezone

from brightpearl.errors import AuthError, BrightpearlError

from ..models import Connection
from .brightpearl import client_for


@dataclass
class CheckItem:
    field: str
    ok: bool
    message: str


@dataclass
class RefundRows:
    """A connection's bank accounts per currency and outcome mappings (stored or as typed)."""

    bank_accounts: list = field(default_factory=list)
    outcome_mappings: list = field(default_factory=list)


def stored_refund_rows(connection) -> RefundRows:
    # A connection not saved yet (the admin checks before the first save) has none stored.
    if not connection.pk:
        return RefundRows()
    return RefundRows(
        list(connection.refund_bank_accounts.all()), list(connection.outcome_mappings.all())
    )


def _movable_status_check(statuses: dict[int, dict], status_id: int) -> CheckItem:
    """The cancelled status is set with Order Status Update, which refuses a hidden status."""
    item = _status_check(statuses, status_id, "cancelled_credit_status_id", "Status")
    status = statuses.get(status_id) or {}
    if item.ok and (status.get("visible") is False or status.get("disabled")):
        return CheckItem(
            item.field,
            False,
            f"Status {status_id} ({status.get('name')}) is hidden or disabled: Brightpearl "
            "refuses to move an order to it.",
        )
    return item


def _status_check(statuses: dict[int, dict], status_id: int, field: str, label: str) -> CheckItem:
    status = statuses.get(status_id)
    if status is None:
        return CheckItem(field, False, f"{label} {status_id} does not exist in Brightpearl.")
    if status.get("orderTypeCode") != "SC":
        return CheckItem(
            field,
            False,
            f"{label} {status_id} ({status.get('name')}) is a status for "
            f"{status.get('orderTypeCode')} orders, not sales credits.",
        )
    return CheckItem(
        field, True, f"{label} {status_id} is the sales-credit status '{status.get('name')}'."
    )


# Items about the account as a whole: a failed one means the settings could not be checked
# (they are saved anyway, and the failure reported); any other failed item names a setting
# Brightpearl does not know, which the admin form refuses.
UNVERIFIED = frozenset({"credentials", "settings"})


def check_connection(
    connection: Connection,
    *,
    save: bool = True,
    mappings: list | None = None,
    refund_rows: RefundRows | None = None,
) -> list[CheckItem]:
    """Run every check; never raises for a Brightpearl answer, only reports it.

    ``mappings`` (warehouse mappings) and ``refund_rows`` (bank accounts per currency, outcome
    mappings), saved or not, replace the stored ones: the admin checks what staff typed
    before anything is saved."""
    items: list[CheckItem] = []
    try:
        client = client_for(connection, timeout=15)
    except ValueError as exc:  # e.g. a datacentre that is not a code: nothing was sent
        items.append(CheckItem("brightpearl_datacentre", False, str(exc)))
        return _finish(connection, items, save)
    try:
        config = client.get_account_configuration()
    except AuthError as exc:
        items.append(CheckItem("credentials", False, f"Brightpearl refused the credentials: {exc}"))
        return _finish(connection, items, save)
    except BrightpearlError as exc:
        items.append(CheckItem("credentials", False, f"Could not reach Brightpearl: {exc}"))
        return _finish(connection, items, save)
    items.append(
        CheckItem(
            "credentials",
            True,
            f"Connected to Brightpearl account '{connection.brightpearl_account}'.",
        )
    )
    try:
        items.extend(_check_settings(connection, client, config, mappings, refund_rows))
    except BrightpearlError as exc:
        items.append(CheckItem("settings", False, f"Brightpearl answered with an error: {exc}"))
    return _finish(connection, items, save)


def _check_settings(connection, client, config, mappings, refund_rows) -> list[CheckItem]:
    return [
        *_status_checks(connection, client, config),
        *_channel_checks(connection, client),
        *_warehouse_checks(connection, client, mappings),
        *_check_refund_accounts(connection, client, refund_rows or stored_refund_rows(connection)),
    ]


def _status_checks(connection, client, config) -> list[CheckItem]:
    status_fields = ("credit_status_id", "received_status_id", "cancelled_credit_status_id")
    if not any(getattr(connection, field) for field in status_fields):
        default = (config or {}).get("configuration", config or {}).get("newSalesCreditStatusId")
        return [
            CheckItem(
                "credit_status_id",
                True,
                f"Not set: Brightpearl's default sales-credit status ({default}) will be used.",
            )
        ]
    statuses = {s["statusId"]: s for s in client.get_order_statuses()}
    items = [
        _status_check(statuses, getattr(connection, field), field, "Status")
        for field in status_fields[:2]
        if getattr(connection, field)
    ]
    if connection.cancelled_credit_status_id:
        items.append(_movable_status_check(statuses, connection.cancelled_credit_status_id))
    return items


def _channel_checks(connection, client) -> list[CheckItem]:
    if not connection.credit_channel_id:
        return []
    channels = {c["id"]: c for c in client.get_channels([connection.credit_channel_id])}
    channel = channels.get(connection.credit_channel_id)
    if channel:
        return [CheckItem("credit_channel_id", True, f"Channel '{channel.get('name')}' exists.")]
    return [
        CheckItem(
            "credit_channel_id",
            False,
            f"Channel {connection.credit_channel_id} does not exist in Brightpearl.",
        )
    ]


def _warehouse_checks(connection, client, mappings) -> list[CheckItem]:
    if mappings is None:
        mappings = list(connection.warehouse_mappings.all())
    if not mappings:
        return []
    warehouses = {w["id"]: w for w in client.get_warehouses()}
    items = []
    for mapping in mappings:
        warehouse = warehouses.get(mapping.warehouse_id)
        field = f"warehouse_mapping[{mapping.destination_id}]"
        items.append(
            CheckItem(
                field,
                True,
                f"Destination {mapping.destination_id} → Brightpearl warehouse "
                f"{mapping.warehouse_id} ({warehouse.get('name')}).",
            )
            if warehouse
            else CheckItem(
                field,
                False,
                f"Warehouse {mapping.warehouse_id} (for destination "
                f"{mapping.destination_id}) does not exist in Brightpearl.",
            )
        )
    return items


@dataclass
class _Books:
    """Brightpearl's bank accounts (code → nominal), currencies (ID → ISO) and payment methods,
    read once for every refund check."""

    banks: dict[str, dict]
    currencies: dict[str, str]
    methods: list[dict]

    def bank_currency(self, code: str) -> str | None:
        currency_id = self.banks[code].get("currencyId")
        return self.currencies.get(str(currency_id)) if currency_id not in (None, "") else None

    def methods_paying_into(self, code: str, currency: str | None = None) -> list[dict]:
        return [
            m
            for m in self.methods
            if any(
                str(b.get("bankAccountNominalCode")) == code
                and (currency is None or str(b.get("currencyIsoCode", "")).upper() == currency)
                for b in m.get("bankAccounts") or []
            )
        ]


def _check_refund_accounts(connection, client, rows: RefundRows) -> list[CheckItem]:
    """The refund bank (and its currency), each per-currency bank account, and each outcome
    mapped to a payment method: one line each."""
    books = _Books(
        {str(n.get("code")): n for n in client.search_nominal_codes(bank="true")},
        {str(c.get("id")): str(c.get("code") or "").upper() for c in client.search_currencies()},
        client.get_payment_methods(),
    )
    items = [_check_refund_method(connection, books)]
    accounts = rows.bank_accounts
    mappings = [m for m in rows.outcome_mappings if m.treatment == "payment_method"]
    items += [_check_currency_bank(account, books) for account in accounts]
    refund_banks = {connection.refund_method_code} | {a.nominal_code for a in accounts}
    items += [_check_outcome_method(m, books, refund_banks) for m in mappings]
    return items


def _check_refund_method(connection, books: _Books) -> CheckItem:
    code = connection.refund_method_code
    if code not in books.banks:
        return CheckItem(
            "refund_method_code",
            False,
            f"{code} is not a bank account nominal code in Brightpearl "
            f"(bank accounts: {', '.join(sorted(books.banks)) or 'none'}).",
        )
    methods = books.methods_paying_into(code)
    if not methods:
        return CheckItem(
            "refund_method_code",
            False,
            f"Bank account {code} exists but no payment method pays into it; "
            "add one in Brightpearl (Settings › Payment methods).",
        )
    names = ", ".join(f"{m.get('code')}" for m in methods)
    currency = books.bank_currency(code)
    where = (
        f"; it is a {currency} account (refunds in other currencies need their own)"
        if currency
        else ""
    )
    return CheckItem(
        "refund_method_code",
        True,
        f"Bank account {code} is used by payment method(s) {names}{where}.",
    )


def _check_currency_bank(account, books: _Books) -> CheckItem:
    field, code, currency = (
        f"refund_bank_account[{account.currency}]",
        account.nominal_code,
        account.currency,
    )
    if code not in books.banks:
        return CheckItem(field, False, f"{code} is not a bank account nominal code in Brightpearl.")
    actual = books.bank_currency(code)
    if actual and actual != currency:
        return CheckItem(
            field, False, f"Bank account {code} is a {actual} account, not {currency}."
        )
    methods = books.methods_paying_into(code, currency)
    if not methods:
        return CheckItem(
            field,
            False,
            f"No payment method pays {currency} into bank account {code}; link one in "
            "Brightpearl (Settings › Payment methods).",
        )
    names = ", ".join(str(m.get("code")) for m in methods)
    return CheckItem(field, True, f"{currency} refunds: bank account {code} via {names}.")


def _check_outcome_method(mapping, books: _Books, refund_banks: set[str]) -> CheckItem:
    field, code = f"outcome_mapping[{mapping.outcome}]", mapping.payment_method_code
    method = next((m for m in books.methods if str(m.get("code")).upper() == code), None)
    if method is None:
        return CheckItem(field, False, f"Payment method {code} does not exist in Brightpearl.")
    if method.get("isActive") is False:
        return CheckItem(field, False, f"Payment method {code} is not active in Brightpearl.")
    accounts = {str(b.get("bankAccountNominalCode")) for b in method.get("bankAccounts") or []}
    if accounts & refund_banks:
        return CheckItem(
            field,
            False,
            f"Payment method {code} pays into the refund bank account "
            f"{', '.join(sorted(accounts & refund_banks))}: {mapping.get_outcome_display()} "
            "would be booked as money leaving the bank. Use a liability or clearing account.",
        )
    return CheckItem(
        field,
        True,
        f"{mapping.get_outcome_display()} → payment method {code} "
        f"(account {', '.join(sorted(accounts)) or 'none'}).",
    )


def record_check(connection: Connection, items: list[CheckItem]) -> list[CheckItem]:
    """Store a check made before the connection was saved (the admin's save buttons)."""
    return _finish(connection, items, True)


def _finish(connection: Connection, items: list[CheckItem], save: bool) -> list[CheckItem]:
    if save and connection.pk:
        Connection.objects.filter(pk=connection.pk).update(
            last_check_at=timezone.now(),
            last_check_ok=all(i.ok for i in items),
            last_check_report=[asdict(i) for i in items],
        )
    return items
