"""What the connector adds to an RMA's admin rows: links to its sales credit and payments in
this admin, and to the original order in Brightpearl's own screens (returns/admin.py asks for
them through `add_rma_links`; `returns` never imports the connector)."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse

from returns.admin import add_rma_links

from ..services.timeline import brightpearl_order_url


def rma_links(rma) -> list[tuple[str, str]]:
    try:
        credit = rma.sales_credit
    except ObjectDoesNotExist:
        return []
    links = []
    if credit.credit_id:
        url = reverse("admin:connector_salescredit_change", args=[credit.pk])
        links.append((f"Sales credit {credit.credit_id}", url))
    for refund in rma.refunds.all():
        try:
            payment = refund.payment
        except ObjectDoesNotExist:
            continue
        if payment.payment_id:
            url = reverse("admin:connector_refundpayment_change", args=[payment.pk])
            links.append((f"Payment {payment.payment_id}", url))
    order_url = brightpearl_order_url(rma.connection, credit.parent_order_id)
    if order_url:
        links.append((f"Order {credit.parent_order_id} in Brightpearl", order_url))
    return links


add_rma_links(rma_links, related=("sales_credit",), prefetch=("refunds__payment",))
