"""One order end to end: the RMA page reads as a timeline of what happened (in time order, with
Brightpearl links), says what comes next and offers what staff can do; one search box finds the
return by order name, RMA number, Brightpearl order ID or credit ID. Real syncs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connector.models import SalesCredit, SyncEvent
from returns.models import Rma

from .admin_roles import client_for, staff_user

pytestmark = pytest.mark.django_db

RMA_LIST = reverse("admin:returns_rma_changelist")


def story(world):
    """A return credited, received, processed and refunded through real syncs."""
    sku = "SHIRT-" + world.bp.code
    sale = world.sale([(sku, 2, "20.00", "4.00")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 2}])
    world.sync()
    rma = Rma.objects.get(external_id=loop_return["id"])
    page_after_credit = rma
    world.bp.control.receive(rma.sales_credit.credit_id)
    world.sync()
    world.sync()
    return sale, Rma.objects.get(pk=page_after_credit.pk)


def test_the_rma_page_tells_the_story_in_time_order_with_links_and_the_next_step(
    world, admin_client, settings
):
    settings.BRIGHTPEARL_UI_ORDER_URL = "https://{datacentre}.example.test/order/{id}"
    sale, rma = story(world)
    credit = SalesCredit.objects.get(rma=rma)
    html = admin_client.get(reverse("admin:returns_rma_change", args=[rma.pk])).content.decode()
    timeline = html[html.index('id="console-timeline"') : html.index("Stored details")]
    steps = [
        "Return received from Loop",
        "Sales credit: succeeded",
        "Receipt: succeeded",
        "Process on platform: succeeded",
        "Refund: succeeded",
    ]
    positions = [timeline.index(step) for step in steps]
    assert positions == sorted(positions), "the timeline is in time order"
    assert f"Created sales credit {credit.credit_id} on order {sale.order_id}" in timeline
    payment = credit.payments.get()
    assert f"as payment {payment.payment_id}" in timeline  # refund recorded, payment ID shown
    assert f"https://euw1.example.test/order/{credit.credit_id}" in timeline
    assert f"https://euw1.example.test/order/{sale.order_id}" in timeline
    assert "Done: credited, received, processed and refunded." in timeline
    assert 'id="console-retry"' not in timeline  # nothing failed: nothing to retry


def test_a_flagged_return_says_why_and_offers_clear_flag_only_to_operators(world):
    sku = "COAT-" + world.bp.code
    sale = world.sale([(sku, 1, "50.00", "10.00")])
    world.loop_return(sale, [{"sku": sku}, {"sku": "NOT-SOLD-HERE"}])
    world.sync()
    rma = Rma.objects.get()
    url = reverse("admin:returns_rma_change", args=[rma.pk])
    viewer_client = client_for(staff_user("view"))
    viewer = viewer_client.get(url).content.decode()
    assert f"Needs staff: SKU NOT-SOLD-HERE is not on original order {sale.order_id}." in viewer
    assert "not on their order" in viewer  # the advice, in words
    assert "console-clear-flag" not in viewer and "console-retry" not in viewer
    operator = client_for(staff_user("operate"))
    offered = operator.get(url).content.decode()
    assert 'id="console-clear-flag"' in offered and 'id="console-retry"' in offered
    assert operator.get(reverse("admin:returns_rma_retry", args=[rma.pk])).status_code == 405
    refused = viewer_client.post(reverse("admin:returns_rma_retry", args=[rma.pk]))
    assert refused.status_code == 403
    assert not SyncEvent.objects.filter(kind="retry").exists()


@pytest.mark.parametrize("what", ["order name", "bare order number", "rma", "order id", "credit"])
def test_one_box_finds_the_return_by_anything_staff_have(world, admin_client, what):
    sku = "HAT-" + world.bp.code
    sale = world.sale([(sku, 1, "30.00", "6.00")])
    world.loop_return(sale, [{"sku": sku}])
    other = world.sale([(sku, 1, "30.00", "6.00")])
    world.loop_return(other, [{"sku": sku}])
    world.sync()
    rma = Rma.objects.get(order_name=sale.order_name)
    term = {
        "order name": sale.order_name,
        "bare order number": sale.order_name.lstrip("#"),
        "rma": rma.rma_number,
        "order id": str(sale.order_id),
        "credit": str(rma.sales_credit.credit_id),
    }[what]
    found = admin_client.get(RMA_LIST, {"q": term}).context["cl"].result_list
    assert [r.pk for r in found] == [rma.pk]


def test_the_brightpearl_order_id_named_in_a_message_finds_events_credits_and_returns(
    world, admin_client
):
    sku = "COAT-" + world.bp.code
    sale = world.sale([(sku, 1, "50.00", "10.00")])
    world.loop_return(sale, [{"sku": sku}, {"sku": "NOT-SOLD-HERE"}])
    world.sync()
    rma = Rma.objects.get()
    term = str(sale.order_id)  # "… is not on original order <id>."
    for name, expected in (
        ("admin:connector_syncevent_changelist", {rma.pk}),
        ("admin:connector_salescredit_changelist", {rma.pk}),
        ("admin:returns_rma_changelist", {rma.pk}),
    ):
        rows = admin_client.get(reverse(name), {"q": term}).context["cl"].result_list
        found = {getattr(row, "rma_id", None) or row.pk for row in rows}
        assert rows and found == expected, name
