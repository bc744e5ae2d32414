"""What one platform refund becomes in Brightpearl — a pure decision, no I/O.

* Money back to the original payment method → a customer payment from the bank account for
  the credit's currency.
* Store credit, gift card, exchange → as the connection maps them: a customer payment with a
  payment method that is not a bank (a liability / clearing account), or nothing but a note on
  the credit (the default: never money out of the bank).
* The credit is in the original order's currency. A refund in another currency is booked with
  the platform's shop-currency amount when that is the credit's currency; otherwise it is
  refused with the reason — never posted in the wrong currency.
* What is recorded against one credit (posted or noted) never exceeds its total. The part of a
  refund above what is left (a store-credit bonus, say) is never paid: it is noted on the
  credit, or the whole refund is held for staff, as configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from returns import outcomes

from ..models.refund_settings import ALLOWED, BONUS, Treatment

BANK = "bank"
REFUSE = "refuse"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class RefundPlan:
    treatment: str  # bank | payment_method | note | refuse
    amount: Decimal = Decimal(0)  # recorded against the credit, in its currency
    currency: str = ""
    bonus: Decimal = Decimal(0)  # above what was left of the credit's total: never paid
    payment_method_code: str = ""  # treatment payment_method: the configured code
    reason: str = ""  # refuse: why; otherwise what staff should know (conversion, bonus)


@dataclass(frozen=True)
class RefundFacts:
    """The refund as the platform reported it, and the credit it is recorded against."""

    outcome: str
    amount: Decimal
    currency: str
    shop_amount: Decimal | None
    shop_currency: str
    credit_currency: str
    credit_total: Decimal
    already_recorded: Decimal  # by the credit's other refunds (posted or noted)
    method: str = ""  # the platform's own name for it (shown in reasons)


def treatments(mappings: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """outcome → (treatment, payment method code), defaults filled in for what is not mapped."""
    return {
        outcome: mappings.get(outcome) or (str(allowed[0]), "")
        for outcome, allowed in ALLOWED.items()
    }


def plan_refund(facts: RefundFacts, mappings: dict[str, tuple[str, str]]) -> RefundPlan:
    configured = treatments(mappings)
    if facts.outcome not in outcomes.KNOWN:
        return RefundPlan(
            REFUSE,
            reason=f"The platform's refund type {facts.method or '(none)'!r} is not a known "
            "outcome (money back, store credit, gift card, exchange), so nothing was recorded. "
            "Record it by hand in Brightpearl.",
        )
    value, currency, converted = _in_credit_currency(facts)
    if value is None:
        return RefundPlan(
            REFUSE,
            reason=f"The refund is in {facts.currency} but the credit is in "
            f"{facts.credit_currency}, and the platform gave no {facts.credit_currency} amount "
            "to record: nothing was posted. Record it by hand at the rate the shop used.",
        )
    if facts.outcome == outcomes.ORIGINAL_PAYMENT:
        treatment, code = BANK, ""
    else:
        treatment, code = configured[facts.outcome]
    left = max(facts.credit_total - facts.already_recorded, Decimal(0))
    recorded = min(value, left).quantize(CENT)
    bonus = (value - recorded).quantize(CENT)
    notes = [converted] if converted else []
    if bonus > 0:
        if configured[BONUS][0] == Treatment.HOLD:
            return RefundPlan(
                REFUSE,
                reason=f"{outcomes.label(facts.outcome)} of {money(value)} {currency} is {bonus} "
                f"more than what is left of the credit ({money(left)} {currency}); held for "
                "staff as configured, nothing recorded.",
            )
        notes.append(
            f"{bonus} {currency} above the credit's total (a bonus) was not paid; noted on "
            "the credit."
        )
    if recorded == 0:
        treatment, code = Treatment.NOTE, ""
    return RefundPlan(str(treatment), recorded, currency, bonus, code, " ".join(notes))


def _in_credit_currency(facts: RefundFacts) -> tuple[Decimal | None, str, str]:
    """(value, currency, what was converted) — value None when it cannot be had honestly."""
    credit = facts.credit_currency.upper()
    refund = (facts.currency or credit).upper()
    if not credit or refund == credit:
        return facts.amount, refund, ""
    if facts.shop_amount is not None and facts.shop_currency.upper() == credit:
        return (
            facts.shop_amount,
            credit,
            f"Converted with the platform's shop amount: {money(facts.amount)} {refund} = "
            f"{money(facts.shop_amount)} {credit}.",
        )
    return None, refund, ""


def money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT)


def note_text(refund_id: str, rma_number: str, facts: RefundFacts, plan: RefundPlan, ref: str):
    """The note put on the credit for an outcome that is not money out of the bank (and for a
    bonus that was not paid)."""
    what = outcomes.label(facts.outcome)
    text = f"{what} {refund_id} for RMA {rma_number}: {money(facts.amount)} {facts.currency}"
    if facts.outcome == outcomes.EXCHANGE:
        text += f"; exchange order {ref or '(not named by the platform)'}"
        text += ". No payment recorded: the credit is left for staff to settle."
    elif ref:
        text += f" ({ref})"
    if plan.treatment == Treatment.NOTE and facts.outcome != outcomes.EXCHANGE:
        text += ". No payment recorded (not money out of the bank)."
    elif plan.treatment != Treatment.NOTE:
        text += f". Recorded {money(plan.amount)} {plan.currency}."
    if plan.reason:
        text += " " + plan.reason
    return text[:1000]
