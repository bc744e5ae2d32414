"""The pure rule deciding what a refund becomes: outcome, currency, and the cap at the
credit's total (connector/services/refund_outcomes.py)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.services.refund_outcomes import RefundFacts, plan_refund


def facts(**overrides) -> RefundFacts:
    base = {
        "outcome": "original_payment",
        "amount": Decimal("20.00"),
        "currency": "GBP",
        "shop_amount": None,
        "shop_currency": "",
        "credit_currency": "GBP",
        "credit_total": Decimal("20.00"),
        "already_recorded": Decimal(0),
    }
    return RefundFacts(**(base | overrides))


GIFTCARD = {"store_credit": ("payment_method", "GIFTCARD")}


@pytest.mark.parametrize(
    ("overrides", "mappings", "treatment", "amount", "bonus"),
    [
        ({}, {}, "bank", "20.00", "0.00"),
        ({"outcome": "store_credit"}, {}, "note", "20.00", "0.00"),
        ({"outcome": "gift_card"}, {}, "note", "20.00", "0.00"),
        ({"outcome": "exchange"}, {}, "note", "20.00", "0.00"),
        ({"outcome": "store_credit"}, GIFTCARD, "payment_method", "20.00", "0.00"),
        (
            {"outcome": "store_credit", "amount": Decimal("22.00")},
            GIFTCARD,
            "payment_method",
            "20.00",
            "2.00",
        ),
        (
            {"amount": Decimal("8.00"), "already_recorded": Decimal("15.00")},
            {},
            "bank",
            "5.00",
            "3.00",
        ),
        ({"already_recorded": Decimal("20.00")}, {}, "note", "0.00", "20.00"),
        (
            {"currency": "EUR", "shop_amount": Decimal("17.50"), "shop_currency": "GBP"},
            {},
            "bank",
            "17.50",
            "0.00",
        ),
    ],
)
def test_plans(overrides, mappings, treatment, amount, bonus):
    plan = plan_refund(facts(**overrides), mappings)
    assert (plan.treatment, plan.amount, plan.bonus) == (treatment, Decimal(amount), Decimal(bonus))


@pytest.mark.parametrize(
    ("overrides", "mappings", "words"),
    [
        ({"outcome": "unknown", "method": "RefundToWallet"}, {}, "RefundToWallet"),
        ({"currency": "USD"}, {}, "in USD but the credit is in GBP"),
        ({"currency": "USD", "shop_amount": Decimal("16"), "shop_currency": "EUR"}, {}, "no GBP"),
        ({"amount": Decimal("22.00")}, {"bonus": ("hold", "")}, "held for staff"),
    ],
)
def test_refusals_say_why_and_record_nothing(overrides, mappings, words):
    plan = plan_refund(facts(**overrides), mappings)
    assert plan.treatment == "refuse" and plan.amount == 0 and words in plan.reason


cents = st.decimals(min_value=0, max_value=10_000, places=2)


@given(total=cents, amounts=st.lists(cents, max_size=6))
def test_what_is_recorded_never_exceeds_the_credit_and_bonus_makes_up_the_rest(total, amounts):
    recorded = Decimal(0)
    for value in amounts:
        plan = plan_refund(facts(amount=value, credit_total=total, already_recorded=recorded), {})
        assert plan.amount + plan.bonus == value
        recorded += plan.amount
    assert recorded <= total
