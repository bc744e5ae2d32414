"""Past returns in bulk, as a sync would have left them (credited, received, processed on the
platform, refunded as a payment): the history a quiet poll must not pay for. Used by
tests/connector/test_cost_follows_change.py and bench/quiet_poll.py."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from connector.models import BindingState, Connection, RefundPayment, SalesCredit
from returns.models import Refund, Rma, RmaLine


def seed_history(connection: Connection, size: int, offset: int) -> None:
    """`size` finished returns, written in bulk the way a sync would have left them."""
    now = timezone.now() - timedelta(days=30)
    rmas = Rma.objects.bulk_create(
        Rma(
            connection=connection,
            platform="loop",
            external_id=f"old-{offset + i}",
            rma_number=f"old-{offset + i}",
            order_name=f"#old-{offset + i}",
            currency="GBP",
            status="processed",
            furthest_status="processed",
            platform_status="closed",
            platform_updated_at=now,
        )
        for i in range(size)
    )
    RmaLine.objects.bulk_create(
        RmaLine(
            rma=rma,
            sku="SKU-A",
            quantity=1,
            unit_price=Decimal("10.00"),
            quantity_received=1,
            quantity_restocked=1,
        )
        for rma in rmas
    )
    credits = SalesCredit.objects.bulk_create(
        SalesCredit(
            connection=connection,
            account_key=connection.brightpearl_account_key,
            rma=rma,
            external_ref=f"rbc:{connection.pk}:loop:old-{offset + i}",
            parent_order_id=1_000_000 + offset + i,
            credit_id=2_000_000 + offset + i,
            state=BindingState.CREATED,
            processed_at=now,
            order_row_units={"1": "1"},
        )
        for i, rma in enumerate(rmas)
    )
    refunds = Refund.objects.bulk_create(
        Refund(
            rma=rma,
            external_id=f"r-{rma.external_id}",
            amount=Decimal("12.00"),
            status="",
            bound=True,  # its payment binding below
        )
        for rma in rmas
    )
    RefundPayment.objects.bulk_create(
        RefundPayment(
            connection=connection,
            account_key=connection.brightpearl_account_key,
            refund=refund,
            sales_credit=credit,
            transaction_ref=f"rbc-{connection.pk}-{refund.external_id}",
            payment_id=3_000_000 + i + offset,
            state=BindingState.CREATED,
        )
        for i, (refund, credit) in enumerate(zip(refunds, credits, strict=True))
    )


def as_if_an_hour_passed(connection: Connection) -> None:
    """Everything written so far was written an hour ago, and the duplicate check looked ten
    minutes ago: a connection whose returns are all settled, so a sync now has nothing to do
    (the duplicate check's look after writes is not due)."""
    earlier = timezone.now() - timedelta(hours=1)
    SalesCredit.objects.filter(connection=connection).update(updated_at=earlier)
    RefundPayment.objects.filter(connection=connection).update(updated_at=earlier)
    Connection.objects.filter(pk=connection.pk).update(
        duplicates_checked_at=timezone.now() - timedelta(minutes=10)
    )
