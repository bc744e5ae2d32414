"""Refunds: one Brightpearl customer payment (PAYMENT) per platform refund, against the credit.

`transactionRef` is deterministic per refund, and Brightpearl checks `transactionRef` +
`paymentMethodCode` for uniqueness: a retry after a lost answer is refused instead of paying
twice. Before posting again after an unknown outcome we search for the payment and adopt it.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from brightpearl import (
    AuthError,
    BrightpearlError,
    PaymentMethodNotFoundError,
    ServerError,
    ThrottledError,
    TransportError,
)
from returns import lifecycle
from returns.models import Refund

from ..models import BindingState, RefundPayment, SalesCredit, SyncEvent
from .context import SyncContext

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome
PAID_STATUSES = {"", "success", "succeeded", "paid", "complete", "completed", "processed"}


def transaction_ref_for(connection, refund: Refund) -> str:
    ref = f"rbc-{connection.pk}-{refund.rma.external_id}-{refund.external_id}"
    if len(ref) <= 64:
        return ref
    return f"rbc-{connection.pk}-" + hashlib.sha256(ref.encode()).hexdigest()[:40]


def refund_candidates(connection) -> list[Refund]:
    return list(
        Refund.objects.filter(
            rma__connection=connection,
            rma__sales_credit__state=BindingState.CREATED,
            amount__gt=0,
        )
        .exclude(payment__state__in=[BindingState.CREATED, BindingState.FAILED])
        .select_related("rma", "rma__sales_credit")
        .order_by("pk")
    )


def record_refunds(ctx: SyncContext, refunds: list[Refund] | None = None) -> None:
    if not ctx.connection.record_refunds:
        return
    refunds = refund_candidates(ctx.connection) if refunds is None else refunds
    for refund in refunds:
        if (refund.status or "").strip().lower() not in PAID_STATUSES:
            continue  # requested, pending…: not money yet
        try:
            record_refund(ctx, refund)
        except AuthError:
            raise
        except BrightpearlError as exc:
            ctx.record(
                Kind.REFUND, Outcome.FAILED, f"Brightpearl error: {exc}", rma=refund.rma, error=exc
            )
    close_finished_credits(ctx)


def _payment_method(ctx: SyncContext, currency: str) -> str:
    cache = ctx.cache.setdefault("payment_methods", {})
    if currency not in cache:
        cache[currency] = ctx.client.resolve_payment_method_code(
            ctx.connection.refund_method_code, currency
        )
    return cache[currency]


def _find_payment(ctx: SyncContext, payment: RefundPayment, credit_id: int) -> int | None:
    for row in ctx.client.search_customer_payments(orderId=credit_id):
        if row.get("transactionRef") == payment.transaction_ref:
            return int(row["paymentId"])
    return None


def record_refund(ctx: SyncContext, refund: Refund) -> None:
    binding: SalesCredit = refund.rma.sales_credit
    currency = refund.currency or binding.currency or refund.rma.currency
    payment, _ = RefundPayment.objects.get_or_create(
        refund=refund,
        defaults={
            "connection": ctx.connection,
            "sales_credit": binding,
            "transaction_ref": transaction_ref_for(ctx.connection, refund),
        },
    )
    try:
        method = _payment_method(ctx, currency)
    except PaymentMethodNotFoundError as exc:
        ctx.record(Kind.REFUND, Outcome.FAILED, str(exc), rma=refund.rma, error=exc)
        return
    body = {
        "transactionRef": payment.transaction_ref,
        "paymentMethodCode": method,
        "paymentType": "PAYMENT",
        "orderId": binding.credit_id,
        "currencyIsoCode": currency,
        "amountPaid": str(Decimal(refund.amount).quantize(Decimal("0.01"))),
        "paymentDate": (refund.refunded_at or timezone.now()).isoformat(),
        "journalRef": f"Refund {refund.external_id} for RMA {refund.rma.rma_number}"[:255],
    }
    if ctx.dry_run:
        ctx.record(
            Kind.REFUND, Outcome.SKIPPED, f"Dry run: would record payment {body}", rma=refund.rma
        )
        return
    with transaction.atomic():
        locked = (
            RefundPayment.objects.select_for_update(skip_locked=True).filter(pk=payment.pk).first()
        )
        if locked is None or locked.state in (BindingState.CREATED, BindingState.FAILED):
            return
        was_attempted = locked.state == BindingState.ATTEMPTING
        locked.state, locked.attempts = BindingState.ATTEMPTING, locked.attempts + 1
        locked.payment_method_code = method
        locked.save(update_fields=["state", "attempts", "payment_method_code", "updated_at"])
    payment = locked
    found = _find_payment(ctx, payment, binding.credit_id) if was_attempted else None
    if found is None:
        try:
            found = ctx.client.create_customer_payment(body)
        except (ServerError, TransportError) as exc:
            try:
                found = _find_payment(ctx, payment, binding.credit_id)
            except BrightpearlError:
                found = None
            if found is None:
                RefundPayment.objects.filter(pk=payment.pk).update(last_error=str(exc)[:2000])
                ctx.record(
                    Kind.REFUND,
                    Outcome.FAILED,
                    f"Brightpearl did not confirm the payment ({exc}); the next attempt "
                    "searches before posting.",
                    rma=refund.rma,
                    error=exc,
                )
                return
        except ThrottledError as exc:
            RefundPayment.objects.filter(pk=payment.pk).update(
                state=BindingState.PENDING, last_error=str(exc)[:2000]
            )
            ctx.record(Kind.REFUND, Outcome.FAILED, f"Throttled: {exc}", rma=refund.rma, error=exc)
            return
        except BrightpearlError as exc:
            # Refused; if it is the uniqueness rule, the payment exists: adopt it.
            found = _find_payment(ctx, payment, binding.credit_id)
            if found is None:
                RefundPayment.objects.filter(pk=payment.pk).update(
                    state=BindingState.FAILED, last_error=str(exc)[:2000]
                )
                ctx.record(
                    Kind.REFUND,
                    Outcome.FAILED,
                    f"Brightpearl refused the payment: {exc}",
                    rma=refund.rma,
                    error=exc,
                )
                return
    RefundPayment.objects.filter(pk=payment.pk).update(
        state=BindingState.CREATED, payment_id=found, last_error=""
    )
    ctx.record(
        Kind.REFUND,
        Outcome.SUCCEEDED,
        f"Recorded refund {refund.external_id} ({body['amountPaid']} {currency}) as "
        f"payment {found} on credit {binding.credit_id}.",
        rma=refund.rma,
        credit_id=binding.credit_id,
    )


def close_finished_credits(ctx: SyncContext) -> None:
    """Like Loop's integration: once processed and refunded, invoice (close) the credit."""
    if not ctx.connection.close_credits or ctx.dry_run:
        return
    done = (
        SalesCredit.objects.filter(
            connection=ctx.connection,
            state=BindingState.CREATED,
            closed_at__isnull=True,
            processed_at__isnull=False,
            rma__status__in=[lifecycle.PROCESSED, lifecycle.CLOSED],
            payments__state=BindingState.CREATED,
        )
        .distinct()
        .select_related("rma")
    )
    for binding in done:
        if binding.rma.refunds.exclude(payment__state=BindingState.CREATED).exists():
            continue
        try:
            ctx.client.close_sales_credit(binding.credit_id)
        except BrightpearlError as exc:
            ctx.record(
                Kind.CLOSE,
                Outcome.FAILED,
                f"Could not close the credit: {exc}",
                rma=binding.rma,
                credit_id=binding.credit_id,
                error=exc,
            )
            continue
        SalesCredit.objects.filter(pk=binding.pk).update(closed_at=timezone.now())
        ctx.record(
            Kind.CLOSE,
            Outcome.SUCCEEDED,
            "Processed and refunded: credit closed.",
            rma=binding.rma,
            credit_id=binding.credit_id,
        )
