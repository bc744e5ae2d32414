"""Check a connection against Brightpearl itself, field by field.

Staff see one line per setting: do the credentials work, is the status ID a sales-credit status,
does the channel exist, does each mapped warehouse exist, is the refund method code a bank account
with a payment method.
"""

from dataclasses import asdict, dataclass

from django.utils import timezone

from brightpearl.errors import AuthError, BrightpearlError

from ..models import Connection
from .brightpearl import client_for


@dataclass
class CheckItem:
    field: str
    ok: bool
    message: str


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
    connection: Connection, *, save: bool = True, mappings: list | None = None
) -> list[CheckItem]:
    """Run every check; never raises for a Brightpearl answer, only reports it.

    ``mappings`` (warehouse mappings, saved or not) replaces the stored ones: the admin checks
    what staff typed before anything is saved."""
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
        items.extend(_check_settings(connection, client, config, mappings))
    except BrightpearlError as exc:
        items.append(CheckItem("settings", False, f"Brightpearl answered with an error: {exc}"))
    return _finish(connection, items, save)


def _check_settings(connection, client, config, mappings) -> list[CheckItem]:
    items = []
    status_ids = {
        sid for sid in (connection.credit_status_id, connection.received_status_id) if sid
    }
    if status_ids:
        statuses = {s["statusId"]: s for s in client.get_order_statuses()}
        if connection.credit_status_id:
            items.append(
                _status_check(statuses, connection.credit_status_id, "credit_status_id", "Status")
            )
        if connection.received_status_id:
            items.append(
                _status_check(
                    statuses, connection.received_status_id, "received_status_id", "Status"
                )
            )
    else:
        default = (config or {}).get("configuration", config or {}).get("newSalesCreditStatusId")
        items.append(
            CheckItem(
                "credit_status_id",
                True,
                f"Not set: Brightpearl's default sales-credit status ({default}) will be used.",
            )
        )
    if connection.credit_channel_id:
        channels = {c["id"]: c for c in client.get_channels([connection.credit_channel_id])}
        channel = channels.get(connection.credit_channel_id)
        items.append(
            CheckItem("credit_channel_id", True, f"Channel '{channel.get('name')}' exists.")
            if channel
            else CheckItem(
                "credit_channel_id",
                False,
                f"Channel {connection.credit_channel_id} does not exist in Brightpearl.",
            )
        )
    if mappings is None:
        mappings = list(connection.warehouse_mappings.all())
    if mappings:
        warehouses = {w["id"]: w for w in client.get_warehouses()}
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
    items.append(_check_refund_method(connection, client))
    return items


def _check_refund_method(connection, client) -> CheckItem:
    code = connection.refund_method_code
    banks = {str(n.get("code")): n for n in client.search_nominal_codes(bank="true")}
    if code not in banks:
        return CheckItem(
            "refund_method_code",
            False,
            f"{code} is not a bank account nominal code in Brightpearl "
            f"(bank accounts: {', '.join(sorted(banks)) or 'none'}).",
        )
    methods = [
        m
        for m in client.get_payment_methods()
        if any(str(b.get("bankAccountNominalCode")) == code for b in m.get("bankAccounts") or [])
    ]
    if not methods:
        return CheckItem(
            "refund_method_code",
            False,
            f"Bank account {code} exists but no payment method pays into it; "
            "add one in Brightpearl (Settings › Payment methods).",
        )
    names = ", ".join(f"{m.get('code')}" for m in methods)
    return CheckItem(
        "refund_method_code", True, f"Bank account {code} is used by payment method(s) {names}."
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
