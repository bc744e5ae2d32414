"""The same engine with ReturnGO: credit on approval, receipt → status updates, refunds from
transactions — against the ReturnGO and Brightpearl sandboxes over real HTTP."""

from decimal import Decimal

import pytest

from connector.models import BindingState, SalesCredit
from returns.models import Rma

pytestmark = pytest.mark.django_db


def test_returngo_lifecycle(rg_world):
    world, rg = rg_world, rg_world.returngo
    sku = "DRESS-" + world.bp.code
    sale = world.sale([(sku, 2, "100.00", "20.00")])
    rma_record = rg.add_rma(
        items=[{"sku": sku, "quantity": 2, "price": "60.00", "tax": "10.00"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        status="Approved",
        fire=False,
    )
    number = rma_record["rmaSummary"]["rmaId"]

    world.sync()
    [credit] = world.credits()
    assert credit["parentOrderId"] == sale.order_id
    rma = Rma.objects.get(external_id=str(number))
    assert rma.rma_number == f"RMA{number}"  # as ReturnGO shows it to the merchant
    assert credit["reference"] == f"RGO-RMA{number}"
    assert rma.lines.get().quantity == 2  # two per-unit items aggregated

    world.bp.control.receive(credit["id"])
    world.sync()
    rma.refresh_from_db()
    assert rma.status == "processed"
    assert rg.get_rma(number)["rmaSummary"]["status"] == "Done"

    rg.add_transaction(number, "120.00", id="tx-9")  # the credit: 2 of the order row, 120.00
    world.sync()
    payments = [p for p in world.payments() if p["orderId"] == credit["id"]]
    assert len(payments) == 1
    assert payments[0]["paymentMethodCode"] == "CARD"  # bank 1220 in GBP
    assert Decimal(str(payments[0]["amountPaid"])) == Decimal("120.00")
    assert SalesCredit.objects.get().state == BindingState.CREATED


def test_returngo_pending_rma_gets_no_credit_until_approved(rg_world):
    world, rg = rg_world, rg_world.returngo
    sku = "SKIRT-" + world.bp.code
    sale = world.sale([(sku, 1, "40.00", "8.00")])
    record = rg.add_rma(
        items=[{"sku": sku}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        status="Pending",
        fire=False,
    )
    world.sync()
    assert world.credits() == []
    rg.set_status(record["rmaSummary"]["rmaId"], "Approved", fire=False)
    world.sync()
    assert len(world.credits()) == 1
