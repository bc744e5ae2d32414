"""factory-boy factories for the neutral RMA store."""

from __future__ import annotations

from decimal import Decimal

import factory

from returns.models import Refund, Rma, RmaLine
from returns.platforms.base import NeutralLine, NeutralRefund, NeutralRma
from tests.support.factories import ConnectionFactory


class RmaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rma

    connection = factory.SubFactory(ConnectionFactory)
    platform = "loop"
    external_id = factory.Sequence(lambda n: str(5000 + n))
    rma_number = factory.LazyAttribute(lambda o: o.external_id)
    order_id = factory.Sequence(lambda n: str(7_000_000 + n))
    order_name = factory.Sequence(lambda n: f"#{1000 + n}")
    currency = "USD"
    customer_email = "customer@example.com"
    status = "approved"
    furthest_status = "approved"
    platform_status = "open"


class RmaLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RmaLine

    rma = factory.SubFactory(RmaFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    quantity = 1
    unit_price = Decimal("10.00")
    platform_line_ids = factory.Sequence(lambda n: [str(90000 + n)])


class RefundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Refund

    rma = factory.SubFactory(RmaFactory)
    external_id = factory.Sequence(lambda n: f"rf-{n}")
    amount = Decimal("10.00")
    currency = "USD"
    status = "success"


class NeutralLineFactory(factory.Factory):
    class Meta:
        model = NeutralLine

    platform_line_id = factory.Sequence(lambda n: str(60000 + n))
    sku = "SKU-A"
    quantity = 1
    unit_price = Decimal("10.00")
    discount = Decimal("0")
    tax = Decimal("0.80")
    reason = "Too small"
    outcome = "refund"


class NeutralRefundFactory(factory.Factory):
    class Meta:
        model = NeutralRefund

    external_id = factory.Sequence(lambda n: f"nrf-{n}")
    amount = Decimal("10.80")
    currency = "USD"
    method = "shopify_payments"
    status = "success"


class NeutralRmaFactory(factory.Factory):
    class Meta:
        model = NeutralRma

    platform = "loop"
    external_id = factory.Sequence(lambda n: str(8000 + n))
    platform_status = "open"
    order_id = "5550001"
    order_name = "#1001"
    currency = "USD"
    customer_email = "customer@example.com"
    lines = factory.LazyFunction(lambda: [NeutralLineFactory(), NeutralLineFactory()])
    refunds = factory.LazyFunction(list)
