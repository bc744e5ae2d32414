"""Refunds: one Brightpearl customer payment (PAYMENT) per platform refund, against the credit.

`transactionRef` is deterministic per refund, and Brightpearl checks `transactionRef` +
`paymentMethodCode` for uniqueness: a retry after a lost answer is refused instead of paying
twice. Before posting again after an unknown outcome we search for the payment and adopt it.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from brightpearl import (
    AuthError,
    BrightpearlError,
    PaymentMethodNotFoundError,
    ThrottledError,
    TransportError,
)
from returns import lifecycle
from returns.models import Refund

from ..models import BindingState, RefundPayment, SalesCredit, SyncEvent
from . import exactly_once, reference
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
        # Not yet recorded: no payment binding, or one still pending/attempting (a join, not a
        # NOT IN over every refund ever recorded).
        .filter(
            Q(payment__isnull=True)
            | Q(payment__state__in=[BindingState.PENDING, BindingState.ATTEMPTING])
        )
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
        code = ctx.connection.refund_method_code
        cache[currency] = reference.cached(
            ctx.connection,
            "payment-method",
            f"{code}:{currency}",
            lambda: ctx.client.resolve_payment_method_code(code, currency),
        )
    return cache[currency]


def _find_payment(ctx: SyncContext, payment: RefundPayment, credit_id: int) -> int | None:
    for row in ctx.client.search_customer_payments(orderId=credit_id):
        if row.get("transactionRef") == payment.transaction_ref:
            return int(row["paymentId"])
    return None


def record_refund(ctx: SyncContext, refund: Refund) -> None:
    """One customer payment for one refund, exactly once: resolve the payment method, claim the
    binding, search if an earlier attempt may have landed, else post."""
    binding: SalesCredit = refund.rma.sales_credit
    currency = refund.currency or binding.currency or refund.rma.currency
    payment = _payment_binding(ctx, refund, binding)
    method = _method_or_refuse(ctx, refund, payment, currency)
    if method is None:
        return
    body = _payment_body(refund, payment, binding, method, currency)
    if ctx.dry_run:
        ctx.record(
            Kind.REFUND,
            Outcome.SKIPPED,
            "would record the payment:\n" + json.dumps(body, indent=2, sort_keys=True),
            rma=refund.rma,
        )
        return
    claim = _claim(ctx, refund, payment)
    if claim is None:
        return
    payment = claim.binding
    RefundPayment.objects.filter(pk=payment.pk).update(payment_method_code=method)
    found = _find_payment(ctx, payment, binding.credit_id) if claim.search_first else None
    if found is None:
        found = _post_payment(ctx, refund, payment, binding, body)
        if found is None:
            return
    exactly_once.succeeded(payment, payment_id=found)
    ctx.record(
        Kind.REFUND,
        Outcome.SUCCEEDED,
        f"Recorded refund {refund.external_id} ({body['amountPaid']} {currency}) as "
        f"payment {found} on credit {binding.credit_id}.",
        rma=refund.rma,
        credit_id=binding.credit_id,
    )


def _payment_binding(ctx: SyncContext, refund: Refund, binding: SalesCredit) -> RefundPayment:
    payment, _ = RefundPayment.objects.get_or_create(
        refund=refund,
        defaults={
            "connection": ctx.connection,
            "account_key": ctx.connection.brightpearl_account_key,
            "sales_credit": binding,
            "transaction_ref": transaction_ref_for(ctx.connection, refund),
        },
    )
    return payment


def _method_or_refuse(
    ctx: SyncContext, refund: Refund, payment: RefundPayment, currency: str
) -> str | None:
    """The payment method code for the bank nominal code and currency; None (recorded, and
    the binding failed) when Brightpearl has none."""
    try:
        return _payment_method(ctx, currency)
    except PaymentMethodNotFoundError as exc:
        # Configuration, not a passing fault: retrying every run would change nothing.
        reason = (
            f"{exc} Link a payment method to that bank account for {currency} in Brightpearl "
            "(or change the connection's refund method code), then use “retry selected items”."
        )
        if not ctx.dry_run:
            exactly_once.refused(payment, reason)
        ctx.record(Kind.REFUND, Outcome.FAILED, reason, rma=refund.rma, error=exc)
        return None


def _payment_body(
    refund: Refund, payment: RefundPayment, binding: SalesCredit, method: str, currency: str
) -> dict:
    return {
        "transactionRef": payment.transaction_ref,
        "paymentMethodCode": method,
        "paymentType": "PAYMENT",
        "orderId": binding.credit_id,
        "currencyIsoCode": currency,
        "amountPaid": str(Decimal(refund.amount).quantize(Decimal("0.01"))),
        "paymentDate": (refund.refunded_at or timezone.now()).isoformat(),
        "journalRef": f"Refund {refund.external_id} for RMA {refund.rma.rma_number}"[:255],
    }


def _claim(ctx: SyncContext, refund: Refund, payment: RefundPayment) -> exactly_once.Claim | None:
    """The claim on the binding, or None: another execution holds it, or an earlier attempt
    may still be finishing (recorded; the run asks for a follow-up)."""
    claim = exactly_once.claim(RefundPayment, payment.pk, ctx.owner)
    if claim.binding is None:
        if claim.wait_until is not None:
            ctx.retry_at = max(ctx.retry_at or claim.wait_until, claim.wait_until)
            ctx.record(
                Kind.REFUND,
                Outcome.SKIPPED,
                "An earlier attempt to record this refund may still be finishing in "
                f"Brightpearl; nothing is sent again until "
                f"{timezone.localtime(claim.wait_until):%H:%M:%S}.",
                rma=refund.rma,
            )
        return None
    return claim


def _post_payment(
    ctx: SyncContext, refund: Refund, payment: RefundPayment, binding: SalesCredit, body: dict
) -> int | None:
    """POST the payment; the payment ID, or None with the outcome recorded."""
    try:
        return ctx.client.create_customer_payment(body)
    except AuthError:
        exactly_once.not_written(payment, "Brightpearl refused the credentials.")
        raise
    except BrightpearlError as exc:
        error = exc
    if exactly_once.is_unknown_outcome(error):
        found = _find_payment_quietly(ctx, payment, binding.credit_id)
        if found is not None:
            return found
        exactly_once.outcome_unknown(payment, error)
        until = exactly_once.lease_end(payment)
        if until is not None:
            ctx.retry_at = max(ctx.retry_at or until, until)
        ctx.record(
            Kind.REFUND,
            Outcome.FAILED,
            f"Brightpearl did not confirm the payment ({error}); it is searched for before "
            "anything is sent again.",
            rma=refund.rma,
            error=error,
        )
        return None
    if isinstance(error, ThrottledError | TransportError):  # 503 / never sent: not written
        exactly_once.not_written(payment, str(error))
        ctx.record(Kind.REFUND, Outcome.FAILED, f"Throttled: {error}", rma=refund.rma, error=error)
        return None
    # Refused; if it is the transactionRef uniqueness rule, the payment exists: adopt it.
    found = _find_payment_quietly(ctx, payment, binding.credit_id)
    if found is not None:
        return found
    exactly_once.refused(payment, str(error))
    # The cached payment method may be what Brightpearl refused (deactivated, re-coded).
    reference.forget(
        ctx.connection,
        "payment-method",
        f"{ctx.connection.refund_method_code}:{body['currencyIsoCode']}",
    )
    ctx.record(
        Kind.REFUND,
        Outcome.FAILED,
        f"Brightpearl refused the payment: {error}",
        rma=refund.rma,
        error=error,
    )
    return None


def _find_payment_quietly(ctx: SyncContext, payment: RefundPayment, credit_id: int) -> int | None:
    try:
        return _find_payment(ctx, payment, credit_id)
    except BrightpearlError:
        return None


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
