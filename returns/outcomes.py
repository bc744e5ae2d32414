"""Refund outcomes: what the customer got back for a return, in the platforms' neutral words.

Finance books each differently (connector.services.refund_outcomes decides how, per
connection): money back to the original payment method leaves a bank account; store credit and
gift cards are a liability, not money out; an exchange is paid for by the returned goods. Each
adapter maps its platform's names onto these (see docs/returns-platforms.md, "Refund
outcomes"); a name it does not know becomes ``UNKNOWN`` — never posted from the bank.
"""

from __future__ import annotations

ORIGINAL_PAYMENT = "original_payment"
STORE_CREDIT = "store_credit"
GIFT_CARD = "gift_card"
EXCHANGE = "exchange"
UNKNOWN = "unknown"

CHOICES = [
    (ORIGINAL_PAYMENT, "Refund to the original payment method"),
    (STORE_CREDIT, "Store credit"),
    (GIFT_CARD, "Gift card"),
    (EXCHANGE, "Exchange"),
    (UNKNOWN, "Unknown (not recorded)"),
]
KNOWN = frozenset(value for value, _ in CHOICES) - {UNKNOWN}

# The generic intake API takes these words (and the neutral ones) for a refund's `outcome`.
_GENERIC_ALIASES = {
    "": ORIGINAL_PAYMENT,  # an intake refund with no outcome is money back, as before
    "refund": ORIGINAL_PAYMENT,
    "original": ORIGINAL_PAYMENT,
    "original_payment": ORIGINAL_PAYMENT,
    "original_payment_method": ORIGINAL_PAYMENT,
    "store_credit": STORE_CREDIT,
    "credit": STORE_CREDIT,
    "gift_card": GIFT_CARD,
    "giftcard": GIFT_CARD,
    "exchange": EXCHANGE,
}


def from_generic(value: str) -> str:
    """The generic intake's outcome word → neutral outcome; anything else is UNKNOWN."""
    return _GENERIC_ALIASES.get((value or "").strip().lower().replace("-", "_"), UNKNOWN)


def label(outcome: str) -> str:
    return dict(CHOICES).get(outcome, outcome)
