"""Reconciliation: do the returns platform and Brightpearl agree for a date window?

For every return created on the platform in the window (read from the platform, plus the
returns already stored whose creation or a refund falls in it), the matching Brightpearl
sales credit(s) and customer payment(s) are read *from Brightpearl* — credits on the original
orders by one paged `order-search?parentOrderId=<ID set>` per 200 orders, their totals by
Sales Credit GET (200 per call), their payments by `customer-payment-search?orderId=<ID set>`
— through the connection's throttled client, so a report never spends more than the account's
budget allows. Nothing is written: fixing is a separate, explicit step (`reconcile_fix.py`).

Differences, by kind:

* ``missing_credit`` — the return should have a credit (approved or beyond, or closed) and no
  live credit for it is on its order. Fixable (the normal exactly-once path) unless another
  integration's credit sits on that order, which a second credit would double.
* ``duplicate_credit`` — more than one live credit for the return, or a live credit on the
  same order not made by the connector (another integration, e.g. Brightpearl's Shopify app
  "create sales credits from returns"). Never fixed automatically: cancel one in Brightpearl.
* ``amount_mismatch`` — the credit's gross total differs from the return's value on the
  platform, or a payment's amount differs from its refund's.
* ``missing_payment`` — a paid platform refund with no payment on the credit. Fixable when
  the credit is the connector's.
* ``payment_without_refund`` — a payment (PAYMENT) on the credit matching no platform refund.
* ``credit_left_open`` — the return was cancelled or rejected on the platform, and its credit
  is neither cancelled nor moved to the connection's status for such credits.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any

from django.db.models import Q
from django.utils import timezone

from brightpearl import MAX_IDS_PER_CALL
from returns import lifecycle, outcomes
from returns.models import Rma
from returns.platforms.base import NeutralRma
from returns.platforms.errors import PlatformError

from ..models import BindingState, Connection, SalesCredit, Treatment
from .context import SyncContext
from .credits import (
    credits_on_parents,
    customer_ref_for,
    external_ref_for,
    find_order_ids,
)
from .refunds import PAID_STATUSES, transaction_ref_for

MISSING_CREDIT = "missing_credit"
DUPLICATE_CREDIT = "duplicate_credit"
AMOUNT_MISMATCH = "amount_mismatch"
MISSING_PAYMENT = "missing_payment"
PAYMENT_WITHOUT_REFUND = "payment_without_refund"
CREDIT_LEFT_OPEN = "credit_left_open"
KINDS = {
    MISSING_CREDIT: "Missing credit",
    DUPLICATE_CREDIT: "Duplicate credit",
    AMOUNT_MISMATCH: "Amount mismatch",
    MISSING_PAYMENT: "Missing payment",
    PAYMENT_WITHOUT_REFUND: "Payment without refund",
    CREDIT_LEFT_OPEN: "Credit left open",
}
FIX_CREDIT, FIX_PAYMENT = "create_credit", "record_refund"
# Neutral statuses of a return that should have a credit in Brightpearl.
CREDIT_EXPECTED = (*lifecycle.MAIN_LINE[1:], lifecycle.CLOSED)
ENDED_WITHOUT_GOODS = (lifecycle.CANCELLED, lifecycle.REJECTED)
CENT = Decimal("0.01")
OURS_PREFIX = "rbc:"  # every externalRef the connector writes (credits.external_ref_for)


@dataclass
class PlatformRefund:
    external_id: str
    amount: Decimal
    currency: str = ""
    status: str = ""
    outcome: str = outcomes.ORIGINAL_PAYMENT

    @property
    def paid(self) -> bool:
        return self.amount > 0 and (self.status or "").strip().lower() in PAID_STATUSES


@dataclass
class PlatformReturn:
    """A return as the platform has it; attribute names match `returns.Rma` so the connector's
    key functions (externalRef, customer reference, transactionRef) apply unchanged."""

    platform: str
    external_id: str
    rma_number: str = ""
    order_id: str = ""
    order_name: str = ""
    status: str | None = None
    platform_status: str = ""
    created_at: datetime | None = None
    currency: str = ""
    value: Decimal | None = None
    refunds: list[PlatformRefund] = field(default_factory=list)


@dataclass
class Difference:
    kind: str
    message: str
    external_id: str = ""
    rma_number: str = ""
    order_name: str = ""
    credit_id: int | None = None
    payment_id: int | None = None
    platform_amount: Decimal | None = None
    brightpearl_amount: Decimal | None = None
    fix: str = ""  # FIX_CREDIT / FIX_PAYMENT when the fix is safe
    refund_id: str = ""

    @property
    def label(self) -> str:
        return KINDS[self.kind]


@dataclass
class Row:
    """One return, side by side with what Brightpearl holds for it."""

    ret: PlatformReturn
    parent_order_id: int | None = None
    credits: list[dict] = field(default_factory=list)
    payments: list[dict] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    @property
    def credit_total(self) -> Decimal:
        return sum((_gross(c) or Decimal(0) for c in self.credits), Decimal(0))

    @property
    def paid_total(self) -> Decimal:
        return sum((_amount(p) for p in self.payments), Decimal(0))

    @property
    def refunded_total(self) -> Decimal:
        return sum((r.amount for r in self.ret.refunds if r.paid), Decimal(0))


@dataclass
class Report:
    connection: Connection
    start: datetime
    end: datetime
    rows: list[Row] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    brightpearl_requests: int = 0
    platform_error: str = ""

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for difference in self.differences:
            counts[difference.kind] += 1
        return dict(counts)


# --- money -------------------------------------------------------------------------------------
def _dec(value: Any) -> Decimal | None:
    if value in (None, ""):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _gross(credit: dict) -> Decimal | None:
    return _dec((credit.get("total") or {}).get("gross"))


def _amount(payment: dict) -> Decimal:
    """A refund's size. `amountPaid` is "RECEIPTs + CAPTUREs − PAYMENTs" (customer-payment
    search docs): whether a PAYMENT row shows it negative is UNCONFIRMED, so the size is read."""
    return abs(_dec(payment.get("amountPaid")) or Decimal(0))


def value_of_lines(lines: list[Any], totals: dict | None) -> Decimal | None:
    """What the returned goods are worth on the platform, as a credit would carry it: price ×
    units − discount (+ tax unless included), less the fees the platform kept."""
    total = Decimal(0)
    for line in lines:
        parts = [
            _dec(getattr(line, name, 0))
            for name in (
                "unit_price",
                "discount",
                "tax",
                "restocking_fee",
                "return_fee",
                "shipment_fee",
            )
        ]
        units = _dec(getattr(line, "quantity", 1))
        if None in parts or units is None:
            return None
        price, discount, tax, *fees = parts
        tax = Decimal(0) if getattr(line, "tax_included", False) else tax
        total += price * units - discount + tax - sum(fees, Decimal(0))
    handling = _dec((totals or {}).get("handling_fee"))
    return None if handling is None else total - handling


# --- the platform side -------------------------------------------------------------------------
def _refund(refund) -> PlatformRefund:
    """A platform refund (neutral or stored): its amount, currency, status and outcome."""
    return PlatformRefund(
        str(refund.external_id),
        _dec(refund.amount) or Decimal(0),
        refund.currency or "",
        refund.status,
        getattr(refund, "outcome", "") or outcomes.ORIGINAL_PAYMENT,
    )


def from_neutral(neutral: NeutralRma) -> PlatformReturn:
    return PlatformReturn(
        platform=neutral.platform,
        external_id=str(neutral.external_id),
        rma_number=neutral.rma_number,
        order_id=neutral.order_id,
        order_name=neutral.order_name,
        status=lifecycle.map_platform_status(neutral.platform, neutral.platform_status),
        platform_status=neutral.platform_status,
        created_at=neutral.created_at,
        currency=neutral.currency,
        value=value_of_lines(neutral.lines, neutral.totals),
        refunds=[_refund(r) for r in neutral.refunds],
    )


def from_local(rma: Rma) -> PlatformReturn:
    return PlatformReturn(
        platform=rma.platform,
        external_id=rma.external_id,
        rma_number=rma.rma_number,
        order_id=rma.order_id,
        order_name=rma.order_name,
        status=rma.status,
        platform_status=rma.platform_status,
        created_at=rma.platform_created_at,
        currency=rma.currency,
        value=value_of_lines(list(rma.lines.all()), rma.totals),
        refunds=[_refund(r) for r in rma.refunds.all()],
    )


def platform_returns(ctx: SyncContext, start: datetime, end: datetime) -> tuple[list, str]:
    """The window's returns: those stored (created, or refunded, in the window) overlaid with
    what the platform says now about the returns created in it. A platform that cannot be read
    leaves the stored view and the reason."""
    found: dict[tuple[str, str], PlatformReturn] = {}
    stored = (
        Rma.objects.filter(connection=ctx.connection)
        .filter(
            Q(platform_created_at__range=(start, end))
            | Q(platform_created_at__isnull=True, created_at__range=(start, end))
            | Q(refunds__refunded_at__range=(start, end))
        )
        .distinct()
        .prefetch_related("lines", "refunds")
    )
    for rma in stored:
        found[(rma.platform, rma.external_id)] = from_local(rma)
    error = ""
    platform = ctx.platform
    try:
        for neutral in platform.fetch_created(start, end) if platform else ():
            if not neutral.refunds and lifecycle.map_platform_status(
                neutral.platform, neutral.platform_status
            ) in (lifecycle.CLOSED, None):
                neutral.refunds = platform.refunds(neutral.external_id)
            ret = from_neutral(neutral)
            known = found.get((ret.platform, ret.external_id))
            if known is not None and (
                ret.status is None
                or (ret.status == lifecycle.APPROVED and known.status in CREDIT_EXPECTED)
            ):
                ret.status = known.status  # the connector's milestones say more than "approved"
            found[(ret.platform, ret.external_id)] = ret
    except PlatformError as exc:
        error = f"Could not read the platform ({exc}); the stored returns were compared."
    rets = sorted(found.values(), key=lambda r: (r.created_at is None, r.created_at, r.external_id))
    return rets, error


# --- the Brightpearl side ----------------------------------------------------------------------
def parent_orders(ctx: SyncContext, rets: list[PlatformReturn], bindings: dict) -> list:
    """Each return's original order ID: the binding's when there is one, else found the way
    the credit step finds it — one batched sales-order search for all the others
    (`credits.find_order_ids`), not a search per return."""
    known = []
    for ret in rets:
        binding = bindings.get((ret.platform, ret.external_id))
        known.append(int(binding.parent_order_id) if binding and binding.parent_order_id else None)
    unknown = [i for i, parent in enumerate(known) if parent is None]
    found = find_order_ids(ctx, [(rets[i].order_id, rets[i].order_name) for i in unknown])
    for i, parent in zip(unknown, found, strict=True):
        known[i] = parent
    return known


def _payments_on(ctx: SyncContext, credit_ids: list[int]) -> dict[int, list[dict]]:
    """Customer payments on these credits: one paged search per 200 credit IDs."""
    found: dict[int, list[dict]] = defaultdict(list)
    for start in range(0, len(credit_ids), MAX_IDS_PER_CALL):
        chunk = credit_ids[start : start + MAX_IDS_PER_CALL]
        for row in ctx.client.search_customer_payments(orderId=chunk):
            found[int(row.get("orderId") or 0)].append(row)
    return found


@dataclass
class _Books:
    """What Brightpearl holds for the window's orders, read in batches."""

    credits_by_parent: dict[int, list[dict]]
    credits: dict[int, dict]
    payments: dict[int, list[dict]]
    bound: dict[int, tuple[str, str]]  # credit ID → the (platform, return) bound to it


def read_brightpearl(ctx: SyncContext, parents: list, bindings: dict) -> _Books:
    wanted = sorted({p for p in parents if p})
    rows = credits_on_parents(ctx, wanted) if wanted else {}
    ids = {int(r["orderId"]) for found in rows.values() for r in found}
    ids |= {int(b.credit_id) for b in bindings.values() if b.credit_id}
    details = {int(c["id"]): c for c in ctx.client.get_sales_credits(sorted(ids))} if ids else {}
    by_parent: dict[int, list[dict]] = defaultdict(list)
    for credit_id, credit in details.items():
        parent = int(credit.get("parentId") or 0)
        if not parent:
            parent = next((p for p, found in rows.items() if credit_id in _ids(found)), 0)
        by_parent[parent].append(credit)
    bound = {
        int(credit_id): (platform, external_id)
        for credit_id, platform, external_id in SalesCredit.objects.filter(
            account_key=ctx.connection.brightpearl_account_key, credit_id__in=list(details)
        ).values_list("credit_id", "rma__platform", "rma__external_id")
    }
    payments = _payments_on(ctx, sorted(details)) if details else {}
    return _Books(by_parent, details, payments, bound)


def _ids(rows: list[dict]) -> set[int]:
    return {int(r["orderId"]) for r in rows}


# --- comparing ---------------------------------------------------------------------------------
def _set_aside(connection: Connection, credit: dict) -> bool:
    """Cancelled, or moved to a status the connection keeps for credits not to be refunded."""
    if credit.get("isCanceled"):
        return True
    aside = {
        getattr(connection, name, None)
        for name in ("duplicate_credit_status_id", "cancelled_credit_status_id")
    } - {None, 0}
    return credit.get("statusId") in aside


def _is_for(ret: PlatformReturn, credit: dict, refs: tuple[str, str], bound_to) -> bool:
    if bound_to is not None:
        return bound_to == (ret.platform, ret.external_id)
    external_ref, customer_ref = refs
    return credit.get("externalRef") == external_ref or (
        bool(customer_ref) and str(credit.get("ref") or "").strip() == customer_ref
    )


class Comparison:
    """Builds the report's rows and differences from the two sides."""

    def __init__(self, ctx: SyncContext, books: _Books, bindings: dict):
        self.connection, self.books, self.bindings = ctx.connection, books, bindings
        self.reported_foreign: set[int] = set()
        # Outcomes booked as a customer payment: money back always; store credit, gift cards
        # and exchanges only where the connection maps them to a payment method — otherwise
        # they are noted on the credit and no payment is expected (docs/refund-outcomes.md).
        self.paid_outcomes = {outcomes.ORIGINAL_PAYMENT} | {
            m.outcome
            for m in ctx.connection.outcome_mappings.all()
            if m.treatment == Treatment.PAYMENT_METHOD
        }

    def row(self, ret: PlatformReturn, parent: int | None) -> tuple[Row, list[Difference]]:
        refs = (external_ref_for(self.connection, ret), customer_ref_for(self.connection, ret))
        live = [
            c
            for c in self.books.credits_by_parent.get(parent or 0, [])
            if not _set_aside(self.connection, c)
        ]
        binding = self.bindings.get((ret.platform, ret.external_id))
        mine = [c for c in live if _is_for(ret, c, refs, self.books.bound.get(int(c["id"])))]
        if binding is not None and binding.credit_id and binding.credit_id in self.books.credits:
            credit = self.books.credits[int(binding.credit_id)]
            if credit not in mine and credit not in live:
                mine.append(credit)  # ours, set aside or on another order: still compared
        foreign = [
            c
            for c in live
            if c not in mine
            and int(c["id"]) not in self.books.bound
            and not str(c.get("externalRef") or "").startswith(OURS_PREFIX)
        ]
        row = Row(ret, parent, credits=mine)
        row.payments = [p for c in mine for p in self.books.payments.get(int(c["id"]), [])]
        found = self._credit_differences(row, foreign, binding)
        if mine:
            found += self._payment_differences(row, binding)
        row.kinds = sorted({d.kind for d in found})
        return row, found

    def _diff(self, row: Row, kind: str, message: str, **fields) -> Difference:
        ret = row.ret
        return Difference(
            kind,
            message,
            external_id=ret.external_id,
            rma_number=ret.rma_number or ret.external_id,
            order_name=ret.order_name,
            **fields,
        )

    def _credit_differences(self, row: Row, foreign: list[dict], binding) -> list[Difference]:
        ret, mine, found = row.ret, row.credits, []
        new_foreign = [c for c in foreign if int(c["id"]) not in self.reported_foreign]
        self.reported_foreign |= {int(c["id"]) for c in foreign}
        expected = ret.status in CREDIT_EXPECTED
        if expected and not mine:
            found.append(self._missing_credit(row, foreign))
        elif mine:
            for extra in (mine[1:] if len(mine) > 1 else []) + new_foreign:
                found.append(self._duplicate(row, mine[0], extra))
        if len(mine) == 1:
            found += self._credit_amount(row, mine[0])
        if ret.status in ENDED_WITHOUT_GOODS:
            for credit in mine:
                if not _set_aside(self.connection, credit):
                    found.append(
                        self._diff(
                            row,
                            CREDIT_LEFT_OPEN,
                            f"The return is {ret.platform_status or ret.status} on the platform "
                            f"but credit {credit['id']} is still open: finance may refund it.",
                            credit_id=int(credit["id"]),
                            brightpearl_amount=_gross(credit),
                        )
                    )
        return found

    def _missing_credit(self, row: Row, foreign: list[dict]) -> Difference:
        if row.parent_order_id is None:
            return self._diff(
                row,
                MISSING_CREDIT,
                f"No credit: the original order {row.ret.order_name or row.ret.order_id} "
                "was not found in Brightpearl.",
                platform_amount=row.ret.value,
            )
        if foreign:
            ids = ", ".join(str(c["id"]) for c in foreign)
            return self._diff(
                row,
                MISSING_CREDIT,
                f"No credit made for this return, but order {row.parent_order_id} carries "
                f"credit {ids} made by another integration: check whether it is this return's "
                "before creating one (not fixed automatically: it could double the credit).",
                platform_amount=row.ret.value,
                credit_id=int(foreign[0]["id"]),
            )
        return self._diff(
            row,
            MISSING_CREDIT,
            f"No credit for this return on order {row.parent_order_id}.",
            platform_amount=row.ret.value,
            fix=FIX_CREDIT,
        )

    def _duplicate(self, row: Row, kept: dict, extra: dict) -> Difference:
        ours = str(extra.get("externalRef") or "").startswith(OURS_PREFIX)
        who = "made by the connector" if ours else "not made by the connector (another integration)"
        return self._diff(
            row,
            DUPLICATE_CREDIT,
            f"Credit {extra['id']} on order {row.parent_order_id} is {who}, besides credit "
            f"{kept['id']} for this return: if both are for this return, cancel one in "
            "Brightpearl; do not refund both.",
            credit_id=int(extra["id"]),
            brightpearl_amount=_gross(extra),
            platform_amount=row.ret.value,
        )

    def _credit_amount(self, row: Row, credit: dict) -> list[Difference]:
        gross, value = _gross(credit), row.ret.value
        if gross is None or value is None or abs(gross - value) < CENT:
            return []
        return [
            self._diff(
                row,
                AMOUNT_MISMATCH,
                f"Credit {credit['id']} totals {gross:.2f}; the return is worth {value:.2f} "
                "on the platform.",
                credit_id=int(credit["id"]),
                platform_amount=value,
                brightpearl_amount=gross,
            )
        ]

    def _payment_differences(self, row: Row, binding) -> list[Difference]:
        """Refunds ↔ payments: by our transactionRef first, then a payment of the same amount
        made by someone else (another integration recording the same refund)."""
        payments = [p for p in row.payments if p.get("paymentType") == "PAYMENT"]
        by_ref = {str(p.get("transactionRef") or ""): p for p in payments}
        used: set[int] = set()
        found, unmatched = [], []
        expected = (r for r in row.ret.refunds if r.paid and r.outcome in self.paid_outcomes)
        for refund in expected:
            key = SimpleNamespace(rma=row.ret, external_id=refund.external_id)
            payment = by_ref.get(transaction_ref_for(self.connection, key))
            if payment is None:
                unmatched.append(refund)
                continue
            used.add(int(payment["paymentId"]))
            if abs(_amount(payment) - refund.amount) >= CENT:
                found.append(
                    self._diff(
                        row,
                        AMOUNT_MISMATCH,
                        f"Payment {payment['paymentId']} is {_amount(payment):.2f}; refund "
                        f"{refund.external_id} on the platform is {refund.amount:.2f}.",
                        credit_id=int(payment.get("orderId") or 0) or None,
                        payment_id=int(payment["paymentId"]),
                        platform_amount=refund.amount,
                        brightpearl_amount=_amount(payment),
                        refund_id=refund.external_id,
                    )
                )
        for refund in unmatched:
            found += self._unmatched_refund(row, refund, payments, used, binding)
        for payment in payments:
            if int(payment["paymentId"]) not in used:
                found.append(
                    self._diff(
                        row,
                        PAYMENT_WITHOUT_REFUND,
                        f"Payment {payment['paymentId']} ({_amount(payment):.2f}) on credit "
                        f"{payment.get('orderId')} matches no refund on the platform.",
                        credit_id=int(payment.get("orderId") or 0) or None,
                        payment_id=int(payment["paymentId"]),
                        brightpearl_amount=_amount(payment),
                    )
                )
        return found

    def _unmatched_refund(self, row, refund, payments, used, binding) -> list[Difference]:
        for payment in payments:
            pid = int(payment["paymentId"])
            ref = str(payment.get("transactionRef") or "")
            if (
                pid not in used
                and not ref.startswith("rbc-")
                and abs(_amount(payment) - refund.amount) < CENT
            ):
                used.add(pid)  # recorded by someone else, for the same amount
                return []
        credit_id = int(row.credits[0]["id"])
        ours = (
            binding is not None
            and binding.state == BindingState.CREATED
            and binding.credit_id == credit_id
        )
        return [
            self._diff(
                row,
                MISSING_PAYMENT,
                f"Refund {refund.external_id} ({refund.amount:.2f} {refund.currency}) has no "
                f"payment on credit {credit_id}."
                + ("" if ours else " The credit is not the connector's: record it by hand."),
                credit_id=credit_id,
                platform_amount=refund.amount,
                fix=FIX_PAYMENT if ours else "",
                refund_id=refund.external_id,
            )
        ]


# --- the report ----------------------------------------------------------------------------------
def parse_window(start: str, end: str) -> tuple[datetime, datetime]:
    """`--from`/`--to` as staff type them: dates (the whole `to` day included, in the site's
    time zone) or ISO 8601 date-times. A bad value raises ValueError naming it."""
    bounds = []
    for name, text, day_end in (("from", start, False), ("to", end, True)):
        text = (text or "").strip()
        try:
            if len(text) == 10:
                moment = datetime.combine(date.fromisoformat(text), time.max if day_end else time())
            else:
                moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"--{name} {text!r} is not a date (YYYY-MM-DD)") from None
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        bounds.append(moment)
    if bounds[1] < bounds[0]:
        raise ValueError("the window ends before it starts (--to is before --from)")
    return bounds[0], bounds[1]


def bindings_for(connection: Connection, rets: list[PlatformReturn]) -> dict:
    keys = {r.external_id for r in rets}
    return {
        (b.rma.platform, b.rma.external_id): b
        for b in SalesCredit.objects.filter(
            connection=connection, rma__external_id__in=keys
        ).select_related("rma")
    }


def reconcile(connection: Connection, start: datetime, end: datetime) -> Report:
    """Compare the window [start, end]; read-only on both sides."""
    if end < start:
        raise ValueError("the window ends before it starts")
    ctx = SyncContext(connection=connection, dry_run=True)
    report = Report(connection, start, end)
    rets, report.platform_error = platform_returns(ctx, start, end)
    bindings = bindings_for(connection, rets)
    parents = parent_orders(ctx, rets, bindings)
    books = read_brightpearl(ctx, parents, bindings)
    comparison = Comparison(ctx, books, bindings)
    for ret, parent in zip(rets, parents, strict=True):
        row, found = comparison.row(ret, parent)
        report.rows.append(row)
        report.differences += found
    report.brightpearl_requests = ctx.requests_made
    return report


CSV_COLUMNS = (
    "kind",
    "rma",
    "platform return ID",
    "order",
    "credit ID",
    "payment ID",
    "platform amount",
    "Brightpearl amount",
    "fix",
    "message",
)


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _cell(text: str) -> str:
    """Platform text never becomes a spreadsheet formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def report_csv(report: Report) -> str:
    """The differences, one per line (a spreadsheet opens it as it is)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for d in report.differences:
        writer.writerow(
            [
                d.label,
                _cell(d.rma_number),
                _cell(d.external_id),
                _cell(d.order_name),
                d.credit_id or "",
                d.payment_id or "",
                _money(d.platform_amount),
                _money(d.brightpearl_amount),
                "yes" if d.fix else "",
                _cell(d.message),
            ]
        )
    return out.getvalue()
