"""Refunds: one Brightpearl customer payment (PAYMENT) per platform refund, against the credit.

`transactionRef` is deterministic per refund, and Brightpearl checks `transactionRef` +
`paymentMethodCode` for uniqueness: a retry after a lost answer is refused instead of paying
twice. Before posting again after an unknown outcome we search for the payment and adopt it.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from brightpearl import (
    AuthError,
    BrightpearlError,
    BudgetSpent,
    PaymentMethodNotFoundError,
    ThrottledError,
    TransportError,
    finishing,
)
from returns import lifecycle, outcomes
from returns.models import Refund

from ..models import BindingState, RefundPayment, SalesCredit, SyncEvent, Treatment
from . import exactly_once, refund_banks
from . import refund_outcomes as outcomes_plan
from .after_credit import refund_refusal
from .context import SyncContext

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome
PAID_STATUSES = {"", "success", "succeeded", "paid", "complete", "completed", "processed"}


def transaction_ref_for(connection, refund: Refund) -> str:
    ref = f"rbc-{connection.pk}-{refund.rma.external_id}-{refund.external_id}"
    if len(ref) <= 64:
        return ref
    return f"rbc-{connection.pk}-" + hashlib.sha256(ref.encode()).hexdigest()[:40]


def refund_candidates(connection) -> list[Refund]:
    """Refunds to record: those no run has taken on yet (not `bound`: a partial index holds
    only these), and those whose payment is still pending or being attempted. Found as two
    small sets of IDs, then read — not as a join over every refund ever recorded, whose time
    grew with the history."""
    in_flight = RefundPayment.objects.filter(
        connection=connection, state__in=[BindingState.PENDING, BindingState.ATTEMPTING]
    ).values_list("refund_id", flat=True)
    # A refund bound before its flag was set (or by a test writing bindings directly) is
    # left out by `payment__isnull`; one bound and in flight is in `in_flight`.
    new = Refund.objects.filter(
        rma__connection=connection, bound=False, amount__gt=0, payment__isnull=True
    ).values_list("pk", flat=True)
    ids = {*in_flight, *new}
    if not ids:
        return []
    return list(
        Refund.objects.filter(
            pk__in=sorted(ids),
            rma__connection=connection,
            rma__sales_credit__state=BindingState.CREATED,
            amount__gt=0,
        )
        .select_related("rma", "rma__sales_credit")
        .order_by("pk")
    )


def record_refunds(ctx: SyncContext, refunds: list[Refund] | None = None) -> None:
    if not ctx.connection.record_refunds:
        return
    refunds = refund_candidates(ctx.connection) if refunds is None else refunds
    refunds = [r for r in refunds if (r.status or "").strip().lower() in PAID_STATUSES]
    try:  # every credit's total and currency in one batched read
        _credit_money(ctx, [r.rma.sales_credit.credit_id for r in refunds])
    except AuthError:
        raise
    except BrightpearlError:
        pass  # each refund asks again, and records the failure against itself
    for refund in refunds:  # requested, pending…: not money yet, so not in the list
        try:
            record_refund(ctx, refund)
        except AuthError:
            raise
        except BrightpearlError as exc:
            ctx.record(
                Kind.REFUND, Outcome.FAILED, f"Brightpearl error: {exc}", rma=refund.rma, error=exc
            )
    close_finished_credits(ctx)


def record_refund(ctx: SyncContext, refund: Refund) -> None:
    """One refund, exactly once: fix the plan (what it becomes, how much, which currency) under
    a lock of the credit, then post the customer payment — or the note — for it."""
    binding: SalesCredit = refund.rma.sales_credit
    payment = _payment_binding(ctx, refund, binding)
    refusal = refund_refusal(binding)  # the return ended after its credit: never paid
    if refusal:
        if not ctx.dry_run:
            exactly_once.refused(payment, refusal)
        ctx.record(
            Kind.REFUND, Outcome.FAILED, refusal, rma=refund.rma, credit_id=binding.credit_id
        )
        return
    fixed = _fix_plan(ctx, refund, payment, binding)
    if fixed is None:
        return
    plan, facts = fixed
    if plan.treatment == outcomes_plan.REFUSE:
        if not ctx.dry_run:
            exactly_once.refused(payment, plan.reason)
        ctx.record(Kind.REFUND, Outcome.FAILED, plan.reason, rma=refund.rma)
        return
    if plan.treatment == Treatment.NOTE:
        _record_note(ctx, refund, payment, binding, plan, facts)
        return
    _record_payment(ctx, refund, payment, binding, plan, facts)


def _record_payment(ctx, refund: Refund, payment, binding: SalesCredit, plan, facts) -> None:
    """The plan says money moves: claim, search if an earlier attempt may have landed, else
    post the customer payment; a bonus beyond the credit is noted on it."""
    method = _method_or_refuse(ctx, refund, payment, plan)
    if method is None:
        return
    body = _payment_body(refund, payment, binding, method, plan)
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
    # A spent budget anywhere up to the POST's answer sent nothing: the claim is undone.
    with exactly_once.budget_pause(payment, sent_before=claim.search_first):
        found = _find_payment(ctx, payment, binding.credit_id) if claim.search_first else None
        if found is None:
            found = _post_payment(ctx, refund, payment, binding, body)
    if found is None:
        return
    exactly_once.succeeded(payment, payment_id=found)
    ctx.record(
        Kind.REFUND,
        Outcome.SUCCEEDED,
        f"Recorded {outcomes.label(refund.outcome).lower()} {refund.external_id} "
        f"({body['amountPaid']} {plan.currency}, payment method {method}) as payment {found} "
        f"on credit {binding.credit_id}. {plan.reason}".strip(),
        rma=refund.rma,
        credit_id=binding.credit_id,
    )
    if plan.bonus > 0:
        note = outcomes_plan.note_text(
            refund.external_id, refund.rma.rma_number, facts, plan, refund.reference
        )
        with finishing():  # the note belongs to the payment: a task's turn ends after it
            _note_quietly(ctx, refund, binding, note)


def _credit_money(ctx: SyncContext, credit_ids: list[int]) -> dict[int, tuple[Decimal, str]]:
    """credit ID → (total, currency) as Brightpearl has them now, one batched GET per run."""
    known = ctx.cache.setdefault("credit_money", {})
    missing = sorted({i for i in credit_ids if i not in known})
    if missing:
        for order in ctx.client.get_orders(missing):
            total = (order.get("totalValue") or {}).get("total")
            currency = (order.get("currency") or {}).get("orderCurrencyCode") or ""
            known[int(order["id"])] = (Decimal(str(total or 0)), str(currency).upper())
    return known


def _stored_plan(payment: RefundPayment) -> outcomes_plan.RefundPlan:
    bonus = payment.bonus or Decimal(0)
    reason = (
        f"{bonus.quantize(outcomes_plan.CENT)} {payment.currency} above the credit's total (a "
        "bonus) was not paid; noted on the credit."
        if bonus > 0
        else ""
    )
    code = payment.payment_method_code if payment.treatment == Treatment.PAYMENT_METHOD else ""
    return outcomes_plan.RefundPlan(
        payment.treatment, payment.amount, payment.currency, bonus, code, reason
    )


def _facts(refund: Refund, money: tuple[Decimal, str], recorded: Decimal):
    total, currency = money
    return outcomes_plan.RefundFacts(
        outcome=refund.outcome,
        amount=Decimal(refund.amount),
        currency=(refund.currency or refund.rma.currency or "").upper(),
        shop_amount=refund.shop_amount,
        shop_currency=refund.shop_currency,
        credit_currency=currency,
        credit_total=total,
        already_recorded=recorded,
        method=refund.method,
    )


def _fix_plan(ctx: SyncContext, refund: Refund, payment: RefundPayment, binding: SalesCredit):
    """(plan, facts), the plan fixed once: a retry reuses it, and the credit's other refunds
    count it. Planned while holding the credit's binding locked, so two refunds of one credit
    planned at once cannot both take what is left of its total. None: recorded, try later."""
    money = _credit_money(ctx, [binding.credit_id]).get(binding.credit_id)
    if money is None:
        ctx.record(
            Kind.REFUND,
            Outcome.FAILED,
            f"Sales credit {binding.credit_id} was not found in Brightpearl; the refund waits.",
            rma=refund.rma,
        )
        return None
    with transaction.atomic():
        SalesCredit.objects.select_for_update().filter(pk=binding.pk).first()
        payment.refresh_from_db()
        others = RefundPayment.objects.filter(sales_credit=binding, amount__isnull=False)
        recorded = others.exclude(pk=payment.pk).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        facts = _facts(refund, money, recorded)
        if payment.amount is not None and payment.treatment:
            return _stored_plan(payment), facts
        mappings = {
            m.outcome: (m.treatment, m.payment_method_code)
            for m in ctx.connection.outcome_mappings.all()
        }
        plan = outcomes_plan.plan_refund(facts, mappings)
        if plan.treatment != outcomes_plan.REFUSE:
            RefundPayment.objects.filter(pk=payment.pk).update(
                treatment=plan.treatment,
                amount=plan.amount,
                currency=plan.currency,
                bonus=plan.bonus,
                payment_method_code=plan.payment_method_code,
            )
    return plan, facts


def _record_note(ctx, refund, payment, binding, plan, facts) -> None:
    """Nothing leaves the bank: a note on the credit says what the customer got. A note whose
    answer was lost is sent again (a second note harms no ledger; a payment would)."""
    text = outcomes_plan.note_text(
        refund.external_id, refund.rma.rma_number, facts, plan, refund.reference
    )
    if ctx.dry_run:
        ctx.record(Kind.REFUND, Outcome.SKIPPED, f"Dry run: would note: {text}", rma=refund.rma)
        return
    claim = _claim(ctx, refund, payment)
    if claim is None:
        return
    try:
        with exactly_once.budget_pause(claim.binding, sent_before=claim.search_first):
            note_id = ctx.client.add_order_note(binding.credit_id, text)
    except AuthError:
        exactly_once.not_written(claim.binding, "Brightpearl refused the credentials.")
        raise
    except BrightpearlError as exc:
        if isinstance(exc, ThrottledError | TransportError) or exactly_once.is_unknown_outcome(exc):
            exactly_once.not_written(claim.binding, str(exc))
        else:
            exactly_once.refused(claim.binding, str(exc))
        ctx.record(
            Kind.REFUND,
            Outcome.FAILED,
            f"Could not note it on the credit: {exc}",
            rma=refund.rma,
            error=exc,
        )
        return
    exactly_once.succeeded(claim.binding, note_id=note_id)
    ctx.record(
        Kind.REFUND,
        Outcome.SUCCEEDED,
        f"{outcomes.label(refund.outcome)} {refund.external_id} "
        f"({outcomes_plan.money(facts.amount)} {facts.currency}): no payment from the bank; "
        f"noted on credit {binding.credit_id}. "
        f"{plan.reason}".strip(),
        rma=refund.rma,
        credit_id=binding.credit_id,
    )


def _note_quietly(ctx: SyncContext, refund: Refund, binding: SalesCredit, text: str) -> None:
    """The bonus note after a payment: a failure is recorded, never raised (the payment
    stands)."""
    try:
        ctx.client.add_order_note(binding.credit_id, text)
    except AuthError:
        raise
    except (BrightpearlError, BudgetSpent) as exc:
        # The payment stands; a spent budget is recorded like any failure (with the note's
        # text for staff), then pauses the run as everywhere else.
        ctx.record(
            Kind.REFUND,
            Outcome.FAILED,
            f"Payment recorded, but the note about the part above the credit's total failed: "
            f"{exc}. {text}",
            rma=refund.rma,
            error=exc if isinstance(exc, BrightpearlError) else None,
        )
        if isinstance(exc, BudgetSpent):
            raise


def _find_payment(ctx: SyncContext, payment: RefundPayment, credit_id: int) -> int | None:
    for row in ctx.client.search_customer_payments(orderId=credit_id):
        if row.get("transactionRef") == payment.transaction_ref:
            return int(row["paymentId"])
    return None


def _payment_binding(ctx: SyncContext, refund: Refund, binding: SalesCredit) -> RefundPayment:
    """The refund's binding, made on first sight, and the refund marked `bound` with it: from
    now on the binding's state is what brings it back (see `refund_candidates`)."""
    with transaction.atomic():
        payment, _ = RefundPayment.objects.get_or_create(
            refund=refund,
            defaults={
                "connection": ctx.connection,
                "account_key": ctx.connection.brightpearl_account_key,
                "sales_credit": binding,
                "transaction_ref": transaction_ref_for(ctx.connection, refund),
            },
        )
        if not refund.bound:
            Refund.objects.filter(pk=refund.pk).update(bound=True)
            refund.bound = True
    return payment


def _method_or_refuse(ctx: SyncContext, refund: Refund, payment: RefundPayment, plan) -> str | None:
    """The payment method code: the configured one for a non-bank outcome, else the one for
    the bank account of the refund's currency. None (recorded, and the binding failed) when
    there is no bank account in that currency or no payment method for it."""
    if plan.treatment == Treatment.PAYMENT_METHOD:
        return plan.payment_method_code
    try:
        method, code = refund_banks.payment_method_for_bank(ctx, plan.currency)
    except PaymentMethodNotFoundError as exc:
        # Configuration, not a passing fault: retrying every run would change nothing.
        reason = (
            f"{exc} Nothing was posted; fix it in Brightpearl or the connection's settings, "
            "then use “retry selected items”."
        )
        if not ctx.dry_run:
            exactly_once.refused(payment, reason)
        ctx.record(Kind.REFUND, Outcome.FAILED, reason, rma=refund.rma, error=exc)
        return None
    ctx.cache.setdefault("bank_by_method", {})[method] = code
    return method


def _payment_body(
    refund: Refund, payment: RefundPayment, binding: SalesCredit, method: str, plan
) -> dict:
    return {
        "transactionRef": payment.transaction_ref,
        "paymentMethodCode": method,
        "paymentType": "PAYMENT",
        "orderId": binding.credit_id,
        "currencyIsoCode": plan.currency,
        "amountPaid": str(Decimal(plan.amount).quantize(Decimal("0.01"))),
        "paymentDate": (refund.refunded_at or timezone.now()).isoformat(),
        "journalRef": f"Refund {refund.external_id} for RMA {refund.rma.rma_number}"[:255],
    }


def _claim(ctx: SyncContext, refund: Refund, payment: RefundPayment) -> exactly_once.Claim | None:
    """The claim on the binding, or None: another execution holds it, or an earlier attempt
    may still be finishing (recorded; the run asks for a follow-up)."""
    claim = exactly_once.claim(RefundPayment, payment.pk, ctx.owner)
    if claim.binding is None:
        if claim.wait_until is not None:
            ctx.follow_up_at(claim.wait_until)
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
        exactly_once.in_doubt(ctx, payment, error)
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
    return _refused_payment(ctx, refund, payment, binding, body, error)


def _refused_payment(
    ctx: SyncContext,
    refund: Refund,
    payment: RefundPayment,
    binding: SalesCredit,
    body: dict,
    error: BrightpearlError,
) -> int | None:
    """Refused; if it is the transactionRef uniqueness rule, the payment exists: adopt it."""
    try:
        found = _find_payment(ctx, payment, binding.credit_id)
    except BrightpearlError:
        found = None
    except BudgetSpent:
        # Not searched: it may exist (a duplicate refused). Searched for before anything is
        # sent again — never marked refused on a guess (the refund would never be paid).
        exactly_once.unsent(payment, sent_before=True)
        ctx.record(
            Kind.REFUND,
            Outcome.FAILED,
            f"Brightpearl refused the payment ({error}); it is searched for before anything "
            "is sent again.",
            rma=refund.rma,
            error=error,
        )
        return None
    if found is not None:
        return found
    exactly_once.refused(payment, str(error))
    # The cached payment method may be what Brightpearl refused (deactivated, re-coded).
    bank = ctx.cache.get("bank_by_method", {}).get(body["paymentMethodCode"])
    if bank:
        refund_banks.forget(ctx, bank, body["currencyIsoCode"])
    ctx.record(
        Kind.REFUND,
        Outcome.FAILED,
        f"Brightpearl refused the payment: {error}",
        rma=refund.rma,
        error=error,
    )
    return None


def _find_payment_quietly(ctx: SyncContext, payment: RefundPayment, credit_id: int) -> int | None:
    """After a POST with an unknown outcome (or a refusal): a failed search, or one the spent
    budget did not let out, finds nothing — the attempt keeps its lease (or is refused)."""
    try:
        return _find_payment(ctx, payment, credit_id)
    except (BrightpearlError, BudgetSpent):
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
