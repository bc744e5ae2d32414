"""Intake: turn a neutral record from any platform into stored `Rma` rows, idempotently.

Rules: one row per (connection, platform, external ID); per-unit platform lines are aggregated
by SKU (every platform line ID kept); the status never moves backwards (`lifecycle.resolve`);
an older payload never overwrites newer data; bad data is stored, flagged and explained in
`problems` — never raised, never dropped. Whether a SKU is on the original order is judged by
the sync engine, not here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction

from . import lifecycle, outcomes
from .currencies import is_currency
from .models import Refund, Rma, RmaLine
from .platforms.base import NeutralLine, NeutralRefund, NeutralRma

INTAKE_FLAG_PREFIX = "Invalid data from the platform: "
MAX_AMOUNT = Decimal(10) ** 10  # Decimal(14, 4) columns hold less than this
MAX_QUANTITY = 1_000_000
UNIT_PLACES = Decimal("0.0001")
LINE_MONEY_FIELDS = (
    "unit_price",
    "discount",
    "tax",
    "restocking_fee",
    "return_fee",
    "shipment_fee",
)


def _clip(value: Any, length: int) -> str:
    return ("" if value is None else str(value)).strip()[:length]


@dataclass
class _Checker:
    problems: list[str] = field(default_factory=list)

    def amount(self, value: Any, what: str, allow_negative: bool = False) -> Decimal:
        if value is None or value == "":
            return Decimal(0)
        if isinstance(value, bool):
            self.problems.append(f"{what}: {value!r} is not a number")
            return Decimal(0)
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            number = None
        if number is None or not number.is_finite():
            self.problems.append(f"{what}: {value!r} is not a number")
            return Decimal(0)
        if abs(number) >= MAX_AMOUNT:
            self.problems.append(f"{what}: {value} is too large")
            return Decimal(0)
        if number < 0 and not allow_negative:
            self.problems.append(f"{what}: {value} is negative")
        return number

    def quantity(self, value: Any, what: str) -> int:
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            number = None
        if number is None or not number.is_finite() or number != number.to_integral_value():
            self.problems.append(f"{what}: quantity {value!r} is not a whole number")
            return 0
        if number < 0:
            self.problems.append(f"{what}: quantity {value} is negative")
            return 0
        if number > MAX_QUANTITY:
            self.problems.append(f"{what}: quantity {value} is implausibly large")
            return 0
        return int(number)


def _line_key(line: NeutralLine) -> str:
    sku = (line.sku or "").strip()
    if sku:
        return sku
    if line.order_line_id:
        return f"order-line:{line.order_line_id}"
    return f"platform-line:{line.platform_line_id}"


def _join_unique(values: Iterable[str], sep: str) -> str:
    seen: list[str] = []
    for value in values:
        value = (value or "").strip()
        if value and value not in seen:
            seen.append(value)
    return sep.join(seen)


def aggregate_lines(lines: Iterable[NeutralLine], check: _Checker) -> dict[str, dict]:
    """Group per-unit lines by SKU. Amounts on a NeutralLine are per unit for unit_price and
    totals for that line for discount, tax and fees; the result keeps that meaning."""
    groups: dict[str, dict] = {}
    for position, line in enumerate(lines, start=1):
        what = f"line {position} ({line.sku or line.platform_line_id or '?'})"
        quantity = check.quantity(line.quantity, what)
        values = {
            name: check.amount(getattr(line, name), f"{what} {name}") for name in LINE_MONEY_FIELDS
        }
        key = _line_key(line)
        group = groups.setdefault(
            key,
            {
                "sku": _clip(line.sku, 128),
                "title": _clip(line.title, 255),
                "order_line_id": _clip(line.order_line_id, 64),
                "quantity": 0,
                "gross": Decimal(0),
                "tax_included": False,
                "keep_item": True,
                "reasons": [],
                "outcomes": [],
                "platform_line_ids": [],
                **{name: Decimal(0) for name in LINE_MONEY_FIELDS if name != "unit_price"},
            },
        )
        group["quantity"] += quantity
        group["gross"] += values["unit_price"] * quantity
        for name in LINE_MONEY_FIELDS[1:]:
            group[name] += values[name]
        group["tax_included"] = group["tax_included"] or bool(line.tax_included)
        # Goods are expected for the SKU unless every unit of it is kept by the customer.
        group["keep_item"] = group["keep_item"] and bool(line.keep_item)
        group["reasons"].append(line.reason)
        group["outcomes"].append(line.outcome)
        if line.platform_line_id:
            group["platform_line_ids"].append(str(line.platform_line_id))
        if not group["title"] and line.title:
            group["title"] = _clip(line.title, 255)
    for group in groups.values():
        for name in LINE_MONEY_FIELDS[1:]:  # sums of storable amounts may not be storable
            if abs(group[name]) >= MAX_AMOUNT:
                check.problems.append(
                    f"{group['sku'] or 'line'} {name}: total {group[name]} is too large"
                )
                group[name] = Decimal(0)
        qty = group["quantity"]
        gross = group.pop("gross")
        group["unit_price"] = (gross / qty).quantize(UNIT_PLACES, ROUND_HALF_UP) if qty else 0
        group["reason"] = _join_unique(group.pop("reasons"), "; ")
        group["outcome"] = _clip(_join_unique(group.pop("outcomes"), ", "), 64)
    return groups


def validate(neutral: NeutralRma, check: _Checker) -> None:
    if not neutral.lines:
        check.problems.append("The return has no lines.")
    if not (neutral.order_id or neutral.order_name):
        check.problems.append("The return names no original order (order ID or order name).")
    if not is_currency(neutral.currency):
        check.problems.append(f"Unknown currency {neutral.currency!r} (not ISO 4217).")
    for name, value in (neutral.totals or {}).items():
        check.amount(value, f"total {name}", allow_negative=True)
    if lifecycle.map_platform_status(neutral.platform, neutral.platform_status) is None:
        check.problems.append(f"Unknown platform status {neutral.platform_status!r}.")


def _is_stale(rma: Rma, neutral: NeutralRma) -> bool:
    return bool(
        neutral.updated_at
        and rma.platform_updated_at
        and neutral.updated_at < rma.platform_updated_at
    )


def fingerprint(neutral: NeutralRma) -> str:
    """A stable hash of everything the platform said about one return."""
    text = json.dumps(dataclasses.asdict(neutral), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _copy_fields(rma: Rma, neutral: NeutralRma) -> None:
    """The platform's description of the return, clipped to the columns (never refused for
    length: a long value is kept shortened, not lost with the whole return)."""
    rma.platform_status = _clip(neutral.platform_status, 64)
    rma.rma_number = _clip(neutral.rma_number or neutral.external_id, 64)
    rma.order_id = _clip(neutral.order_id, 64)
    rma.order_name = _clip(neutral.order_name, 64)
    rma.destination_id = _clip(neutral.destination_id, 64)
    currency = _clip(neutral.currency, 8).upper()
    rma.currency = currency if is_currency(currency) else ""
    rma.customer_email = _clip(neutral.customer_email, 254)
    rma.platform_created_at = neutral.created_at or rma.platform_created_at
    rma.platform_updated_at = neutral.updated_at or rma.platform_updated_at
    rma.totals = {k: None if v is None else str(v) for k, v in (neutral.totals or {}).items()}
    rma.raw = neutral.raw or {}


def upsert_rma(connection: Any, neutral: NeutralRma) -> tuple[Rma, bool]:
    """Store what the platform says about one return. Returns (rma, created).

    A payload identical to the last one taken in writes nothing (a quiet poll re-reads every
    recently updated return: its cost must not grow with history)."""
    if not neutral.platform or not neutral.external_id:
        raise ValueError("a neutral RMA needs its platform and external ID")
    digest = fingerprint(neutral)
    unchanged = (
        Rma.objects.filter(
            connection=connection,
            platform=neutral.platform,
            external_id=_clip(neutral.external_id, 64),
            payload_hash=digest,
        )
        .defer("raw", "totals")
        .first()
    )
    if unchanged is not None:
        return unchanged, False
    key = {
        "connection": connection,
        "platform": neutral.platform,
        "external_id": _clip(neutral.external_id, 64),
    }
    with transaction.atomic():
        rma = Rma.objects.select_for_update().filter(**key).first()
        created = False
        if rma is None:
            try:
                with transaction.atomic():  # savepoint: a concurrent insert must not poison us
                    rma = Rma.objects.create(**key)
                    created = True
            except IntegrityError:
                rma = Rma.objects.select_for_update().get(**key)
        if not created and _is_stale(rma, neutral):
            return rma, False

        check = _Checker()
        validate(neutral, check)
        groups = aggregate_lines(neutral.lines, check)

        mapped = lifecycle.map_platform_status(neutral.platform, neutral.platform_status)
        transition = lifecycle.resolve(
            None if created else rma.status, mapped, None if created else rma.furthest_status
        )
        rma.status, rma.furthest_status = transition.status, transition.furthest
        _copy_fields(rma, neutral)
        rma.payload_hash = digest

        _sync_lines(rma, groups, check)
        _sync_refunds(rma, neutral.refunds, check)
        _apply_problems(rma, check.problems)
        rma.save()
    return rma, created


def _sync_lines(rma: Rma, groups: dict[str, dict], check: _Checker) -> None:
    existing = list(rma.lines.all())
    by_key: dict[str, RmaLine] = {}
    for line in existing:
        if line.sku:
            by_key[line.sku] = line
        for platform_id in line.platform_line_ids or []:  # SKU-less lines: match by unit
            by_key.setdefault(f"platform-line:{platform_id}", line)
        if line.order_line_id:
            by_key.setdefault(f"order-line:{line.order_line_id}", line)
    kept: set[int] = set()
    for key, values in groups.items():
        line = by_key.get(key)
        if line is None or line.pk in kept:
            line = RmaLine(rma=rma)
        for name, value in values.items():
            setattr(line, name, value)
        line.save()
        kept.add(line.pk)
    for line in existing:
        if line.pk in kept:
            continue
        if line.quantity_received or line.quantity_restocked:
            line.quantity = 0
            line.save(update_fields=["quantity"])
            check.problems.append(
                f"Line {line.sku or line.pk} left the return after goods were received."
            )
        else:
            line.delete()


def _sync_refunds(rma: Rma, refunds: Iterable[NeutralRefund], check: _Checker) -> None:
    for position, refund in enumerate(refunds, start=1):
        if not refund.external_id:
            check.problems.append(f"Refund {position} has no ID and was not recorded.")
            continue
        amount = check.amount(refund.amount, f"refund {refund.external_id} amount")
        currency = _clip(refund.currency, 8).upper()
        if currency and not is_currency(currency):
            check.problems.append(f"Refund {refund.external_id}: unknown currency {currency!r}.")
            currency = ""
        Refund.objects.update_or_create(
            rma=rma,
            external_id=_clip(refund.external_id, 128),
            defaults={
                "amount": amount,
                "currency": currency or rma.currency,
                "method": _clip(refund.method, 64),
                "status": _clip(refund.status, 32),
                "refunded_at": refund.refunded_at,
                **_refund_outcome(refund, check),
                "raw": refund.raw or {},
            },
        )


def _refund_outcome(refund: NeutralRefund, check: _Checker) -> dict:
    """The outcome, and the shop-currency side when the platform gave one (a shop amount that
    is not a number, or a currency that is not one, is dropped: never converted with it)."""
    outcome = refund.outcome if refund.outcome in outcomes.KNOWN else outcomes.UNKNOWN
    shop_currency = _clip(refund.shop_currency, 8).upper()
    shop_amount = None
    if refund.shop_amount not in (None, "") and is_currency(shop_currency):
        shop_amount = check.amount(refund.shop_amount, f"refund {refund.external_id} shop amount")
    return {
        "outcome": outcome,
        "shop_amount": shop_amount,
        "shop_currency": shop_currency if shop_amount is not None else "",
        "reference": _clip(refund.reference, 128),
    }


def _apply_problems(rma: Rma, problems: list[str]) -> None:
    rma.problems = "\n".join(problems)
    intake_flag = rma.flag_reason.startswith(INTAKE_FLAG_PREFIX)
    if problems:
        if not rma.flagged or intake_flag or not rma.flag_reason:
            rma.flagged = True
            rma.flag_reason = INTAKE_FLAG_PREFIX + "; ".join(problems)
    elif rma.flagged and intake_flag:
        rma.flagged = False
        rma.flag_reason = ""


def advance(rma: Rma, status: str) -> Rma:
    """Move an RMA to a connector milestone (credited, received, …) or side state, by the same
    never-backwards rule as intake. Saves only the status fields."""
    transition = lifecycle.resolve(rma.status, status, rma.furthest_status)
    rma.status, rma.furthest_status = transition.status, transition.furthest
    rma.save(update_fields=["status", "furthest_status", "updated_at"])
    return rma


def clear_flag(rma: Rma) -> Rma:
    """Staff resolved the flag: resume at the furthest milestone reached."""
    rma.status = lifecycle.clear_flag(rma.status, rma.furthest_status)
    rma.flagged = False
    rma.flag_reason = ""
    rma.save(update_fields=["status", "flagged", "flag_reason", "updated_at"])
    return rma
