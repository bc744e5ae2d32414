"""Credit arithmetic is a pure function: table-driven cases, and properties over any split of
an order row into returns — the credits of a row add up to the row exactly, to the cent."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.services.credit_plan import Credited, plan_credit

CENT = Decimal("0.01")


def order(*rows, currency="GBP", order_id=100):
    """rows: (row_id, sku, quantity, net, tax)."""
    return {
        "id": order_id,
        "currency": {"orderCurrencyCode": currency},
        "parties": {"customer": {"contactId": 7}},
        "warehouseId": 2,
        "orderRows": {
            str(row_id): {
                "productId": 1000 + row_id,
                "productSku": sku,
                "productName": sku,
                "quantity": {"magnitude": str(qty)},
                "rowValue": {
                    "rowNet": {"value": str(net)},
                    "rowTax": {"value": str(tax)},
                    "taxCode": "T20",
                },
                "nominalCode": "4000",
            }
            for row_id, sku, qty, net, tax in rows
        },
    }


_line_ids = iter(range(1, 10**9))


def line(sku, quantity, **fees):
    return SimpleNamespace(pk=next(_line_ids), sku=sku, quantity=quantity, **fees)


def plan(the_order, lines, already=None, currency="GBP", totals=None):
    rma = SimpleNamespace(currency=currency, totals=totals or {}, rma_number="R1", external_id="1")
    return plan_credit(
        rma=rma,
        lines=lines,
        order=the_order,
        external_ref="rbc:1:loop:1",
        customer_ref="RMA-1",
        warehouse_id=None,
        status_id=None,
        channel_id=None,
        installed_integration_instance_id=None,
        fee_nominal_code=None,
        already_credited=already,
    )


def credited_after(plans) -> dict[int, Credited]:
    """What `credits._already_credited` builds from earlier credits' stored units and money."""
    totals: dict[int, Credited] = {}
    for p in plans:
        for row_id, units in p.order_row_units.items():
            net, tax = p.order_row_money[row_id]
            before = totals.get(row_id, Credited(Decimal(0), Decimal(0), Decimal(0)))
            totals[row_id] = Credited(before.units + units, before.net + net, before.tax + tax)
    return totals


def amounts(p):
    return [(r.payload["quantity"], r.payload["net"], r.payload["tax"]) for r in p.rows]


@pytest.mark.parametrize(
    ("rows", "returned", "expected"),
    [
        # the whole row
        ([(1, "A", 2, "20.00", "4.00")], [("A", 2)], [("2", "20.00", "4.00")]),
        # one of three units: round(10/3) and round(2/3)
        ([(1, "A", 3, "10.00", "2.00")], [("A", 1)], [("1", "3.33", "0.67")]),
        # two of three units: cumulative, so round(20/3) = 6.67
        ([(1, "A", 3, "10.00", "2.00")], [("A", 2)], [("2", "6.67", "1.33")]),
        # the SKU on two rows: the first row first, then the next
        (
            [(1, "A", 1, "5.00", "1.00"), (2, "A", 2, "9.00", "1.80")],
            [("A", 2)],
            [("1", "5.00", "1.00"), ("1", "4.50", "0.90")],
        ),
        # SKUs match case-insensitively and without stray spaces
        ([(1, "Mug-Blue", 1, "7.50", "1.50")], [(" mug-blue ", 1)], [("1", "7.50", "1.50")]),
    ],
)
def test_rows_mirror_the_order_rows(rows, returned, expected):
    p = plan(order(*rows), [line(sku, q) for sku, q in returned])
    assert p.ok, p.problems
    assert amounts(p) == expected
    assert {r.payload["productId"] for r in p.rows} <= {1000 + r[0] for r in rows}


@pytest.mark.parametrize(
    ("rows", "returned", "already", "problem"),
    [
        ([(1, "A", 1, "5", "1")], [("B", 1)], None, "SKU B is not on original order 100."),
        ([(1, "A", 1, "5", "1")], [("A", 2)], None, "2 × A returned but 1 sold on order 100."),
        (
            [(1, "A", 2, "5", "1")],
            [("A", 2)],
            {1: Credited(Decimal(1))},
            "2 × A returned but 2 sold on order 100 (1 already credited).",
        ),
    ],
)
def test_problems_forbid_a_credit(rows, returned, already, problem):
    p = plan(order(*rows), [line(sku, q) for sku, q in returned], already)
    assert not p.ok and p.problems == [problem]
    assert p.rows == [] and p.payload == {}


def test_a_currency_mismatch_is_a_problem():
    p = plan(order((1, "A", 1, "5", "1"), currency="EUR"), [line("A", 1)], currency="USD")
    assert p.problems == ["The return is in USD but the original order is in EUR."]


def test_fees_are_their_own_negative_rows():
    p = plan(order((1, "A", 2, "20.00", "4.00")), [line("A", 2, restocking_fee=Decimal("3"))])
    assert amounts(p) == [("2", "20.00", "4.00"), ("1", "-3.00", "0.00")]
    assert p.rows[-1].line_id is None


def test_three_returns_of_one_of_three_units_credit_exactly_the_row():
    the_order = order((1, "A", 3, "10.00", "2.00"))
    plans = []
    for _ in range(3):
        plans.append(plan(the_order, [line("A", 1)], credited_after(plans)))
    assert [amounts(p) for p in plans] == [
        [("1", "3.33", "0.67")],
        [("1", "3.34", "0.66")],
        [("1", "3.33", "0.67")],
    ]
    assert sum(Decimal(p.rows[0].payload["net"]) for p in plans) == Decimal("10.00")
    assert sum(Decimal(p.rows[0].payload["tax"]) for p in plans) == Decimal("2.00")


def test_an_older_credit_without_amounts_counts_as_its_fair_share():
    the_order = order((1, "A", 3, "10.00", "2.00"))
    p = plan(the_order, [line("A", 2)], {1: Credited(Decimal(1))})  # amounts not recorded
    assert amounts(p) == [("2", "6.67", "1.33")]  # 10.00 − round(10/3)


money = st.integers(min_value=0, max_value=2_000_000).map(lambda c: Decimal(c) / 100)


@st.composite
def row_and_split(draw):
    quantity = draw(st.integers(min_value=1, max_value=12))
    net, tax = draw(money), draw(money)
    parts, left = [], quantity
    while left:
        take = draw(st.integers(min_value=1, max_value=left))
        parts.append(take)
        left -= take
    return quantity, net, tax, draw(st.permutations(parts))


@settings(max_examples=300, deadline=None)
@given(row_and_split())
def test_any_split_of_a_row_into_returns_credits_the_row_exactly(case):
    quantity, net, tax, parts = case
    the_order = order((1, "A", quantity, net, tax))
    plans, done = [], 0
    for part in parts:
        p = plan(the_order, [line("A", part)], credited_after(plans))
        assert p.ok, p.problems
        [row] = p.rows
        share_net, share_tax = Decimal(row.payload["net"]), Decimal(row.payload["tax"])
        # each share is within a cent of its exact pro-rata share, and never negative
        assert abs(share_net - net * part / quantity) <= CENT
        assert abs(share_tax - tax * part / quantity) <= CENT
        assert share_net >= 0 and share_tax >= 0
        plans.append(p)
        done += part
    assert sum(Decimal(p.rows[0].payload["net"]) for p in plans) == net
    assert sum(Decimal(p.rows[0].payload["tax"]) for p in plans) == tax
    # and one more unit is refused, with the reason
    extra = plan(the_order, [line("A", 1)], credited_after(plans))
    assert not extra.ok and "already credited" in extra.problems[0]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=5), money, money), min_size=1, max_size=4
    ),
    st.data(),
)
def test_a_sku_spread_over_several_rows_is_credited_row_by_row_exactly(rows, data):
    """The same SKU on several rows (e.g. two lines of one product); returns of any sizes
    consume the rows in order, and every row is credited exactly once it is used up."""
    the_order = order(*[(i + 1, "A", q, n, t) for i, (q, n, t) in enumerate(rows)])
    total_units = sum(q for q, _, _ in rows)
    plans, left = [], total_units
    while left:
        take = data.draw(st.integers(min_value=1, max_value=left))
        p = plan(the_order, [line("A", take)], credited_after(plans))
        assert p.ok, p.problems
        plans.append(p)
        left -= take
    credited = credited_after(plans)
    for i, (q, n, t) in enumerate(rows):
        assert credited[i + 1].units == q
        assert (credited[i + 1].net, credited[i + 1].tax) == (n, t)
