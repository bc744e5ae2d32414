"""Pure rules for building a sales credit from an RMA and its original order (no I/O).

Rows mirror the original order's rows for the returned SKUs: same product, tax code and nominal
code; net and tax pro-rated by quantity, cumulatively, so the credits of a row add up to it
to the cent. An SKU that is not on the order, or more units than
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


@dataclass(frozen=True)
class Credited:
    """What earlier credits on the same order already took from one order row."""

    units: Decimal = Decimal(0)
    net: Decimal | None = None  # None: not recorded (an older credit) — assume its fair share
    tax: Decimal | None = None


@dataclass
class PlannedRow:
    line_id: int | None  # the RMA line; None for a fee row
    payload: dict


@dataclass
class Allocation:
    """Units of one RMA line taken from one order row, with the money they carry."""

    line: Any
    part: int
    row: OrderRow
    units: Decimal
    net: Decimal
    tax: Decimal


@dataclass
class CreditPlan:
    payload: dict = field(default_factory=dict)
    rows: list[PlannedRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Original order row ID → units / [net, tax] this credit takes from it (for later credits).
    order_row_units: dict[int, Decimal] = field(default_factory=dict)
    order_row_money: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _rounded(total: Decimal, units: Decimal, whole: Decimal) -> Decimal:
    """The money of the first `units` units of a row: round(total × units / whole).

    Shares are cumulative — a share is the difference of two such roundings — so whatever the
    split into returns and their order, the shares of a whole row add up to its total exactly,
    and each is within a cent of its exact pro-rata.
    """
    if units >= whole:
        return total
    return (total * units / whole).quantize(CENT, rounding=ROUND_HALF_UP)


def _money_before(row: OrderRow, before: Credited) -> tuple[Decimal, Decimal]:
    """Net and tax already credited on a row (an older credit without amounts: its share)."""
    net = before.net if before.net is not None else _rounded(row.net, before.units, row.quantity)
    tax = before.tax if before.tax is not None else _rounded(row.tax, before.units, row.quantity)
    return net, tax


def _take(row: OrderRow, before: Credited, units: Decimal) -> tuple[Decimal, Decimal]:
    """Net and tax of `units` more units of `row`: the cumulative share, less what earlier
    credits actually took (so the last return of a row takes exactly what is left of it)."""
    done = before.units + units
    net_before, tax_before = _money_before(row, before)
    net = _rounded(row.net, done, row.quantity) - net_before
    tax = _rounded(row.tax, done, row.quantity) - tax_before
    if done < row.quantity:  # never a negative share before the last (older credits' rounding)
        net, tax = max(net, Decimal(0)), max(tax, Decimal(0))
    return net, tax


def allocate_units(
    lines: Iterable[Any],
    rows: list[OrderRow],
    already_credited: Mapping[int, Credited],
    order_id: Any,
) -> tuple[list[Allocation], list[str]]:
    """Match each RMA line's units to the order rows of its SKU (first rows first), counting
    what earlier credits took. Returns the allocations, or the problems that forbid a credit."""
    credited: dict[int, Credited] = dict(already_credited)
    by_sku: dict[str, list[OrderRow]] = defaultdict(list)
    for row in rows:
        if row.sku:
            by_sku[row.sku.casefold()].append(row)
    allocations: list[Allocation] = []
    problems: list[str] = []
    for line in lines:
        quantity = Decimal(line.quantity)
        if quantity <= 0:
            continue
        candidates = by_sku.get((line.sku or "").strip().casefold(), [])
        if not candidates:
            problems.append(f"SKU {line.sku or '(none)'} is not on original order {order_id}.")
            continue
        used = {r.row_id: credited.get(r.row_id, Credited()).units for r in candidates}
        available = sum(r.quantity - used[r.row_id] for r in candidates)
        if quantity > available:
            sold = sum(r.quantity for r in candidates)
            already = sold - available
            problems.append(
                f"{quantity.normalize()} × {line.sku} returned but {sold.normalize()} sold on "
                f"order {order_id}"
                + (f" ({already.normalize()} already credited)" if already else "")
                + "."
            )
            continue
        remaining = quantity
        for part, row in enumerate(candidates):
            before = credited.get(row.row_id, Credited())
            free = row.quantity - before.units
            if free <= 0:
                continue
            take = min(free, remaining)
            net, tax = _take(row, before, take)
            net_before, tax_before = _money_before(row, before)
            credited[row.row_id] = Credited(before.units + take, net_before + net, tax_before + tax)
            allocations.append(Allocation(line, part, row, take, net, tax))
            remaining -= take
            if remaining == 0:
                break
    return allocations, problems


def _product_row(allocation: Allocation, external_ref: str) -> dict:
    row = allocation.row
    payload = {
        "name": row.name or allocation.line.sku,
        "quantity": str(allocation.units.normalize()),
        "taxCode": row.tax_code,
        "net": money(allocation.net),
        "tax": money(allocation.tax),
        "externalRef": f"{external_ref}/{allocation.line.pk}.{allocation.part}"[:64],
    }
    if row.product_id:
        payload["productId"] = row.product_id
    if row.nominal_code:
        payload["nominalCode"] = str(row.nominal_code)
    return payload


def _fee_rows(
    rma: Any, lines: list[Any], external_ref: str, tax_code: str, nominal_code: str | None
) -> list[PlannedRow]:
    """Fees the platform kept, each as its own negative row (never netted into product rows)."""
    fees: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        if Decimal(line.quantity) > 0:
            for name, _label in FEE_KINDS:
                fees[name] += Decimal(getattr(line, name, 0) or 0)
    handling = Decimal(str((rma.totals or {}).get("handling_fee") or 0) or 0)
    amounts = [(label, fees[name]) for name, label in FEE_KINDS] + [("Handling fee", handling)]
    rows = []
    for label, amount in amounts:
        if amount > 0:
            row = {
                "name": f"{label} (RMA {rma.rma_number or rma.external_id})",
                "quantity": "1",
                "taxCode": tax_code,
                "net": money(-amount),
                "tax": "0.00",
                "externalRef": f"{external_ref}/fee.{label}"[:64],
            }
            if nominal_code:
                row["nominalCode"] = nominal_code
            rows.append(PlannedRow(None, row))
    return rows


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
    already_credited: Mapping[int, Credited] | None = None,
) -> CreditPlan:
    """Build the Sales Credit POST body. `already_credited`: order row ID → what earlier
    credits on the same order (in the same Brightpearl account) took from that row."""
    plan = CreditPlan()
    lines = list(lines)
    currency = (order.get("currency") or {}).get("orderCurrencyCode") or ""
    if rma.currency and currency and rma.currency.upper() != currency.upper():
        plan.problems.append(
            f"The return is in {rma.currency} but the original order is in {currency}."
        )
    allocations, problems = allocate_units(
        lines, order_rows(order), already_credited or {}, order.get("id")
    )
    plan.problems += problems
    if plan.problems:
        return plan
    if not allocations:
        plan.problems.append("The return has no units to credit.")
        return plan
    for allocation in allocations:
        row_id = allocation.row.row_id
        plan.rows.append(PlannedRow(allocation.line.pk, _product_row(allocation, external_ref)))
        plan.order_row_units[row_id] = plan.order_row_units.get(row_id, 0) + allocation.units
        net, tax = plan.order_row_money.get(row_id, (Decimal(0), Decimal(0)))
        plan.order_row_money[row_id] = (net + allocation.net, tax + allocation.tax)
    plan.rows += _fee_rows(
        rma, lines, external_ref, allocations[0].row.tax_code, fee_nominal_code or None
    )
    plan.payload = _credit_body(
        order, plan, external_ref, customer_ref, warehouse_id, status_id, channel_id,
        installed_integration_instance_id, currency,
    )  # fmt: skip
    return plan


def _credit_body(
    order: Mapping[str, Any],
    plan: CreditPlan,
    external_ref: str,
    customer_ref: str,
    warehouse_id: int | None,
    status_id: int | None,
    channel_id: int | None,
    installed_integration_instance_id: int | None,
    currency: str,
) -> dict:
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
    return {k: v for k, v in payload.items() if v not in (None, "")}


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
