"""Pure rules for building a sales credit from an RMA and its original order (no I/O).

Rows mirror the original order's rows for the returned SKUs: same product, tax code and nominal
code; net and tax pro-rated by quantity. An SKU that is not on the order, or more units than
were sold (counting units already credited on earlier RMAs), is a problem: nothing is built.
Fees the platform kept appear as their own negative rows, never netted into product rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
FEE_KINDS = (
    ("restocking_fee", "Restocking fee"),
    ("return_fee", "Return fee"),
    ("shipment_fee", "Return shipping fee"),
)


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


@dataclass
class OrderRow:
    row_id: int
    product_id: int | None
    sku: str
    name: str
    quantity: Decimal
    net: Decimal
    tax: Decimal
    tax_code: str
    nominal_code: str | None


def order_rows(order: Mapping[str, Any]) -> list[OrderRow]:
    """The rows of an Order GET response (`orderRows` keyed by row ID), in row-ID order."""
    rows = []
    for row_id, row in (order.get("orderRows") or {}).items():
        value = row.get("rowValue") or {}
        rows.append(
            OrderRow(
                row_id=int(row_id),
                product_id=row.get("productId") or None,
                sku=str(row.get("productSku") or "").strip(),
                name=str(row.get("productName") or ""),
                quantity=Decimal(str((row.get("quantity") or {}).get("magnitude") or "0")),
                net=Decimal(str((value.get("rowNet") or {}).get("value") or "0")),
                tax=Decimal(str((value.get("rowTax") or {}).get("value") or "0")),
                tax_code=str(value.get("taxCode") or ""),
                nominal_code=row.get("nominalCode"),
            )
        )
    return sorted(rows, key=lambda r: r.row_id)


@dataclass
class PlannedRow:
    line_id: int | None  # the RMA line; None for a fee row
    payload: dict


@dataclass
class CreditPlan:
    payload: dict = field(default_factory=dict)
    rows: list[PlannedRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Original order row ID → units this credit takes from it (for later "already credited").
    order_row_units: dict[int, Decimal] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    if part == whole:
        return total
    return (total / whole * part).quantize(CENT, rounding=ROUND_HALF_UP)


def plan_credit(
    *,
    rma: Any,
    lines: Iterable[Any],
    order: Mapping[str, Any],
    external_ref: str,
    customer_ref: str,
    warehouse_id: int | None,
    status_id: int | None,
    channel_id: int | None,
    installed_integration_instance_id: int | None,
    fee_nominal_code: str | None,
    already_credited: Mapping[int, Decimal] | None = None,
) -> CreditPlan:
    """Build the Sales Credit POST body. `already_credited`: order row ID → units credited by
    our earlier credits on the same order."""
    plan = CreditPlan()
    rows = order_rows(order)
    used: dict[int, Decimal] = defaultdict(Decimal, already_credited or {})
    by_sku: dict[str, list[OrderRow]] = defaultdict(list)
    for row in rows:
        if row.sku:
            by_sku[row.sku.casefold()].append(row)

    currency = (order.get("currency") or {}).get("orderCurrencyCode") or ""
    if rma.currency and currency and rma.currency.upper() != currency.upper():
        plan.problems.append(
            f"The return is in {rma.currency} but the original order is in {currency}."
        )

    fees: dict[str, Decimal] = defaultdict(Decimal)
    fee_tax_code = ""
    for line in lines:
        quantity = Decimal(line.quantity)
        if quantity <= 0:
            continue
        candidates = by_sku.get((line.sku or "").strip().casefold(), [])
        if not candidates:
            plan.problems.append(
                f"SKU {line.sku or '(none)'} is not on original order {order.get('id')}."
            )
            continue
        available = sum(r.quantity - used[r.row_id] for r in candidates)
        if quantity > available:
            sold = sum(r.quantity for r in candidates)
            plan.problems.append(
                f"{quantity.normalize()} × {line.sku} returned but {sold.normalize()} sold on "
                f"order {order.get('id')}"
                + (
                    f" ({(sold - available).normalize()} already credited)"
                    if sold != available
                    else ""
                )
                + "."
            )
            continue
        remaining = quantity
        for part, row in enumerate(candidates):
            free = row.quantity - used[row.row_id]
            if free <= 0:
                continue
            take = min(free, remaining)
            used[row.row_id] += take
            plan.order_row_units[row.row_id] = plan.order_row_units.get(row.row_id, 0) + take
            remaining -= take
            payload = {
                "name": row.name or line.sku,
                "quantity": str(take.normalize()),
                "taxCode": row.tax_code,
                "net": money(_share(row.net, take, row.quantity)),
                "tax": money(_share(row.tax, take, row.quantity)),
                "externalRef": f"{external_ref}/{line.pk}.{part}"[:64],
            }
            if row.product_id:
                payload["productId"] = row.product_id
            if row.nominal_code:
                payload["nominalCode"] = str(row.nominal_code)
            plan.rows.append(PlannedRow(line.pk, payload))
            fee_tax_code = fee_tax_code or row.tax_code
            if remaining == 0:
                break
        for name, _label in FEE_KINDS:
            fees[name] += Decimal(getattr(line, name, 0) or 0)

    if plan.problems:
        plan.rows, plan.order_row_units = [], {}
        return plan
    if not plan.rows:
        plan.problems.append("The return has no units to credit.")
        return plan

    handling = Decimal(str((rma.totals or {}).get("handling_fee") or 0) or 0)
    fee_rows = [(label, fees[name]) for name, label in FEE_KINDS]
    fee_rows.append(("Handling fee", handling))
    for label, amount in fee_rows:
        if amount > 0:
            row = {
                "name": f"{label} (RMA {rma.rma_number or rma.external_id})",
                "quantity": "1",
                "taxCode": fee_tax_code,
                "net": money(-amount),
                "tax": "0.00",
                "externalRef": f"{external_ref}/fee.{label}"[:64],
            }
            if fee_nominal_code:
                row["nominalCode"] = fee_nominal_code
            plan.rows.append(PlannedRow(None, row))

    customer = ((order.get("parties") or {}).get("customer") or {}).get("contactId")
    payload: dict[str, Any] = {
        "customer": {"id": customer},
        "ref": customer_ref,
        "parentId": order.get("id"),
        "externalRef": external_ref,
        "priceListId": order.get("priceListId"),
        "priceModeCode": order.get("priceModeCode"),
        "currency": {
            "code": currency,
            "fixedExchangeRate": bool((order.get("currency") or {}).get("fixedExchangeRate")),
        },
        "rows": [r.payload for r in plan.rows],
    }
    exchange_rate = (order.get("currency") or {}).get("exchangeRate")
    if exchange_rate:
        payload["currency"]["exchangeRate"] = str(exchange_rate)
    warehouse = warehouse_id or order.get("warehouseId")
    if warehouse:
        payload["warehouseId"] = int(warehouse)
    if status_id:
        payload["statusId"] = status_id
    if channel_id:
        payload["channelId"] = channel_id
    if installed_integration_instance_id:
        payload["installedIntegrationInstanceId"] = installed_integration_instance_id
    plan.payload = {k: v for k, v in payload.items() if v not in (None, "")}
    return plan


def match_credit_rows(plan_rows: list[dict], credit: Mapping[str, Any]) -> dict[str, list[int]]:
    """RMA line ID → the credit's row IDs, matched by the row externalRef we sent.

    Brightpearl returns rows in no defined order; when a row comes back without its
    externalRef, fall back to product ID and quantity in sending order.
    """
    result: dict[str, list[int]] = defaultdict(list)
    rows = list(credit.get("rows") or [])
    by_ref = {str(r.get("externalRef")): r for r in rows if r.get("externalRef")}
    unclaimed = [r for r in rows if not r.get("externalRef")]
    for planned in plan_rows:
        line_id = planned.get("line_id")
        if line_id is None:
            continue
        row = by_ref.get(planned["externalRef"])
        if row is None:
            for candidate in unclaimed:
                if candidate.get("productId") == planned.get("productId") and Decimal(
                    str(candidate.get("quantity"))
                ) == Decimal(planned["quantity"]):
                    row = candidate
                    unclaimed.remove(candidate)
                    break
        if row is not None:
            result[str(line_id)].append(int(row["id"]))
    return dict(result)
