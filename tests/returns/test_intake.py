"""upsert_rma: idempotent, aggregated, never backwards, and bad data stored flagged."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from returns.intake import INTAKE_FLAG_PREFIX, advance, clear_flag, upsert_rma
from returns.models import Refund, Rma, RmaLine

from .factories import (
    ConnectionFactory,
    NeutralLineFactory,
    NeutralRefundFactory,
    NeutralRmaFactory,
    RmaFactory,
    RmaLineFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def units(sku, count, **kwargs):
    return [NeutralLineFactory(sku=sku, **kwargs) for _ in range(count)]


def test_create_then_idempotent(connection):
    neutral = NeutralRmaFactory(lines=units("A", 2) + units("B", 1), updated_at=T0)
    rma, created = upsert_rma(connection, neutral)
    assert created
    again, created_again = upsert_rma(connection, neutral)
    assert not created_again
    assert again.pk == rma.pk
    assert Rma.objects.count() == 1
    assert RmaLine.objects.filter(rma=rma).count() == 2
    assert rma.status == "approved"
    assert rma.platform_status == "open"
    assert not rma.flagged and rma.problems == ""


def test_same_external_id_on_two_connections_or_platforms_are_different_rmas(connection):
    other = ConnectionFactory()
    upsert_rma(connection, NeutralRmaFactory(external_id="77"))
    upsert_rma(other, NeutralRmaFactory(external_id="77"))
    upsert_rma(
        connection,
        NeutralRmaFactory(external_id="77", platform="returngo", platform_status="Approved"),
    )
    assert Rma.objects.filter(external_id="77").count() == 3


def test_per_unit_lines_are_aggregated_by_sku_keeping_every_platform_id(connection):
    lines = [
        NeutralLineFactory(
            platform_line_id="1",
            sku="A",
            unit_price=Decimal("10.00"),
            tax=Decimal("0.80"),
            discount=Decimal("1.00"),
            reason="Too small",
        ),
        NeutralLineFactory(
            platform_line_id="2",
            sku="A",
            unit_price=Decimal("12.00"),
            tax=Decimal("0.96"),
            discount=Decimal("0"),
            reason="Changed mind",
        ),
        NeutralLineFactory(
            platform_line_id="3",
            sku="A",
            unit_price=Decimal("10.00"),
            tax=Decimal("0.80"),
            discount=Decimal("1.00"),
            reason="Too small",
        ),
        NeutralLineFactory(
            platform_line_id="4",
            sku="B",
            restocking_fee=Decimal("2.50"),
            return_fee=Decimal("1.00"),
            shipment_fee=Decimal("4.00"),
        ),
    ]
    rma, _ = upsert_rma(connection, NeutralRmaFactory(lines=lines))
    a = rma.lines.get(sku="A")
    assert a.quantity == 3
    assert a.platform_line_ids == ["1", "2", "3"]
    assert a.unit_price == Decimal("10.6667")
    assert a.tax == Decimal("2.56")
    assert a.discount == Decimal("2.00")
    assert a.reason == "Too small; Changed mind"
    b = rma.lines.get(sku="B")
    assert (b.quantity, b.restocking_fee, b.return_fee, b.shipment_fee) == (
        1,
        Decimal("2.5"),
        Decimal("1"),
        Decimal("4"),
    )


def test_upsert_keeps_receipts_and_updates_quantities(connection):
    neutral = NeutralRmaFactory(external_id="9", lines=units("A", 2))
    rma, _ = upsert_rma(connection, neutral)
    rma.lines.filter(sku="A").update(quantity_received=2, quantity_restocked=1)
    neutral.lines = units("A", 3) + units("C", 1)
    rma, _ = upsert_rma(connection, neutral)
    a = rma.lines.get(sku="A")
    assert (a.quantity, a.quantity_received, a.quantity_restocked) == (3, 2, 1)
    assert rma.lines.count() == 2
    neutral.lines = units("C", 1)  # A removed on the platform after it was received
    rma, _ = upsert_rma(connection, neutral)
    assert rma.lines.get(sku="A").quantity == 0
    assert "left the return after goods were received" in rma.problems
    assert rma.flagged


def test_never_moves_backwards(connection):
    neutral = NeutralRmaFactory(external_id="10", platform_status="open")
    rma, _ = upsert_rma(connection, neutral)
    advance(rma, "credited")
    advance(rma, "received")
    rma, _ = upsert_rma(connection, neutral)  # Loop still says open
    assert rma.status == "received"
    neutral.platform_status = "closed"
    rma, _ = upsert_rma(connection, neutral)
    assert rma.status == "closed"
    assert rma.furthest_status == "received"


def test_platform_cancel_wins_over_approved(connection):
    neutral = NeutralRmaFactory(external_id="11", platform_status="open")
    upsert_rma(connection, neutral)
    neutral.platform_status = "cancelled"
    rma, _ = upsert_rma(connection, neutral)
    assert rma.status == "cancelled"


def test_flag_survives_platform_open_until_cleared(connection):
    neutral = NeutralRmaFactory(external_id="12", platform_status="open")
    rma, _ = upsert_rma(connection, neutral)
    advance(rma, "credited")
    neutral.platform_status = "review"
    rma, _ = upsert_rma(connection, neutral)
    assert rma.status == "flagged"
    neutral.platform_status = "open"
    rma, _ = upsert_rma(connection, neutral)
    assert rma.status == "flagged"
    clear_flag(rma)
    rma.refresh_from_db()
    assert rma.status == "credited"


def test_older_payload_does_not_overwrite_newer(connection):
    newer = NeutralRmaFactory(
        external_id="13",
        platform_status="closed",
        updated_at=T0 + timedelta(minutes=5),
        order_name="#NEW",
    )
    older = NeutralRmaFactory(
        external_id="13", platform_status="open", updated_at=T0, order_name="#OLD"
    )
    upsert_rma(connection, newer)
    rma, created = upsert_rma(connection, older)
    assert not created
    assert (rma.status, rma.order_name, rma.platform_status) == ("closed", "#NEW", "closed")


def test_refunds_are_upserted_by_external_id(connection):
    neutral = NeutralRmaFactory(external_id="14", refunds=[NeutralRefundFactory(external_id="rf1")])
    rma, _ = upsert_rma(connection, neutral)
    neutral.refunds = [
        NeutralRefundFactory(external_id="rf1", amount=Decimal("5.00")),
        NeutralRefundFactory(external_id="rf2", amount="3.10"),
    ]
    rma, _ = upsert_rma(connection, neutral)
    assert Refund.objects.filter(rma=rma).count() == 2
    assert rma.refunds.get(external_id="rf1").amount == Decimal("5.00")
    assert rma.refunded_total == Decimal("8.10")


BAD_INPUTS = [
    ("no lines", {"lines": []}, "no lines"),
    ("negative quantity", {"lines": [NeutralLineFactory.build(quantity=-1)]}, "negative"),
    (
        "fractional quantity",
        {"lines": [NeutralLineFactory.build(quantity="1.5")]},
        "not a whole number",
    ),
    ("text quantity", {"lines": [NeutralLineFactory.build(quantity="two")]}, "not a whole number"),
    (
        "negative price",
        {"lines": [NeutralLineFactory.build(unit_price=Decimal("-3"))]},
        "is negative",
    ),
    ("text price", {"lines": [NeutralLineFactory.build(unit_price="ten")]}, "not a number"),
    ("text tax", {"lines": [NeutralLineFactory.build(tax="NaN")]}, "not a number"),
    ("huge price", {"lines": [NeutralLineFactory.build(unit_price="1e20")]}, "too large"),
    ("huge quantity", {"lines": [NeutralLineFactory.build(quantity=10**12)]}, "implausibly"),
    ("boolean quantity", {"lines": [NeutralLineFactory.build(quantity=True)]}, "whole number"),
    ("unknown currency", {"currency": "XYZ"}, "Unknown currency"),
    ("empty currency", {"currency": ""}, "Unknown currency"),
    ("long currency", {"currency": "DOLLARS"}, "Unknown currency"),
    ("no order reference", {"order_id": "", "order_name": ""}, "names no original order"),
    ("unknown status", {"platform_status": "teleported"}, "Unknown platform status"),
    ("text total", {"totals": {"total": "lots"}}, "not a number"),
    ("bad refund", {"refunds": [NeutralRefundFactory.build(amount="x")]}, "not a number"),
    ("refund without id", {"refunds": [NeutralRefundFactory.build(external_id="")]}, "no ID"),
]


@pytest.mark.parametrize(
    ("case", "overrides", "problem"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_stored_flagged_with_the_reason(connection, case, overrides, problem):
    rma, created = upsert_rma(connection, NeutralRmaFactory(**overrides))
    assert created
    rma.refresh_from_db()
    assert rma.flagged
    assert problem in rma.problems
    assert rma.flag_reason.startswith(INTAKE_FLAG_PREFIX)
    assert len(rma.currency) <= 3


def test_intake_flag_clears_when_data_is_fixed_but_other_flags_stay(connection):
    neutral = NeutralRmaFactory(external_id="20", currency="XYZ")
    rma, _ = upsert_rma(connection, neutral)
    assert rma.flagged
    neutral.currency = "EUR"
    rma, _ = upsert_rma(connection, neutral)
    assert not rma.flagged and rma.problems == "" and rma.currency == "EUR"

    rma.flagged, rma.flag_reason = True, "Short by one unit"
    rma.save()
    rma, _ = upsert_rma(connection, neutral)
    assert rma.flagged and rma.flag_reason == "Short by one unit"


def test_missing_identity_is_a_programming_error(connection):
    with pytest.raises(ValueError):
        upsert_rma(connection, NeutralRmaFactory(external_id=""))


def test_factories_build_a_consistent_graph():
    line = RmaLineFactory(quantity=2)
    assert line.rma.connection.pk
    assert RmaFactory().lines.count() == 0
    assert line.line_total == Decimal("20.00")


def test_an_unchanged_payload_writes_nothing(connection):
    """A quiet poll re-reads recently updated returns: unchanged ones cost one read, no write."""
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    neutral = NeutralRmaFactory(
        lines=units("A", 2), refunds=[NeutralRefundFactory()], updated_at=T0
    )
    rma, _ = upsert_rma(connection, neutral)
    with CaptureQueriesContext(db) as queries:
        again, created = upsert_rma(connection, neutral)
    assert not created and again.pk == rma.pk
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert len(queries) == 1
    changed = NeutralRmaFactory(
        external_id=neutral.external_id,
        lines=units("A", 1),
        refunds=neutral.refunds,
        updated_at=T0 + timedelta(minutes=1),
    )
    upsert_rma(connection, changed)
    assert RmaLine.objects.get(rma=rma).quantity == 1  # a real change is still taken in
