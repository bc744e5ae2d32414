"""The sync engine end to end against the Brightpearl and Loop sandboxes over real HTTP."""

from decimal import Decimal

import pytest

from connector.models import BindingState, RefundPayment, SalesCredit, SyncEvent, SyncRun
from returns.models import Rma

pytestmark = pytest.mark.django_db


def rma_for(world, loop_return) -> Rma:
    return Rma.objects.get(connection=world.connection, external_id=str(loop_return["id"]))


def test_full_lifecycle_for_several_returns(world):
    shirt, socks = "SHIRT-" + world.bp.code, "SOCKS-" + world.bp.code
    sale_a = world.sale([(shirt, 2, "20.00", "4.00"), (socks, 3, "15.00", "3.00")])
    sale_b = world.sale([(shirt, 1, "10.00", "2.00")])
    # Loop sends one line per unit: 2 shirts + 1 pair of socks, and 1 shirt.
    return_a = world.loop_return(sale_a, [{"sku": shirt, "quantity": 2}, {"sku": socks}])
    return_b = world.loop_return(sale_b, [{"sku": shirt}])

    run = world.sync()
    assert run.status == SyncRun.Status.SUCCEEDED, run.message
    credits = {c["parentOrderId"]: c for c in world.credits()}
    assert set(credits) == {sale_a.order_id, sale_b.order_id}
    credit_a = credits[sale_a.order_id]
    assert credit_a["reference"] == f"RMA-{return_a['id']}"
    rows = {r["productSku"]: r for r in credit_a["orderRows"].values()}
    assert rows[shirt]["quantity"]["magnitude"] == "2.0000"
    assert Decimal(rows[shirt]["rowValue"]["rowNet"]["value"]) == Decimal("20.00")
    # 1 of 3 socks: net and tax pro-rated by quantity.
    assert rows[socks]["quantity"]["magnitude"] == "1.0000"
    assert Decimal(rows[socks]["rowValue"]["rowNet"]["value"]) == Decimal("5.00")
    assert Decimal(rows[socks]["rowValue"]["rowTax"]["value"]) == Decimal("1.00")
    assert rows[socks]["rowValue"]["taxCode"] == "T20"
    assert rows[socks]["nominalCode"] == "4000"
    assert credit_a["warehouseId"] == 2  # the original order's warehouse (no mapping)

    rma_a = rma_for(world, return_a)
    binding = rma_a.sales_credit
    assert rma_a.status == "credited"
    assert binding.credit_id == credit_a["id"]
    assert {int(k) for k in binding.row_map} == {line.pk for line in rma_a.lines.all()}
    assert run.brightpearl_requests > 0
    assert run.counts["credit_succeeded"] == 2

    # The warehouse receives everything on credit A: the return is processed on Loop.
    world.bp.control.receive(binding.credit_id)
    run = world.sync()
    rma_a.refresh_from_db()
    assert rma_a.status == "processed"
    lines = {line.sku: line for line in rma_a.lines.all()}
    assert (lines[shirt].quantity_received, lines[shirt].quantity_restocked) == (2, 2)
    assert "process" in world.loop.actions_for(return_a["id"])
    assert rma_for(world, return_b).status == "credited"

    # Processing made Loop refund the customer and close the return: the next run records
    # that refund as one PAYMENT against the credit.
    [loop_refund] = world.loop.get_return(return_a["id"])["refunds"]
    run = world.sync()
    payments = [p for p in world.payments() if p["orderId"] == binding.credit_id]
    assert len(payments) == 1
    assert payments[0]["paymentType"] == "PAYMENT"
    assert payments[0]["paymentMethodCode"] == "BANK"  # resolved from bank nominal 1200
    assert Decimal(str(payments[0]["amountPaid"])) == Decimal(loop_refund["amount"])
    assert RefundPayment.objects.get().state == BindingState.CREATED

    # Nothing more to do: no new credits or payments on another run.
    run = world.sync()
    assert len(world.credits()) == 2
    assert len(world.payments()) == 1
    assert run.status == SyncRun.Status.SUCCEEDED


def test_partial_receipt_then_full(world):
    sku = "BOOT-" + world.bp.code
    sale = world.sale([(sku, 3, "90.00", "18.00")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 3}])
    world.sync()
    rma = rma_for(world, loop_return)
    credit_id = rma.sales_credit.credit_id
    row_id = rma.sales_credit.row_map[str(rma.lines.get().pk)][0]

    world.bp.control.receive(credit_id, rows=[{"rowId": row_id, "quantity": 1}])
    world.sync()
    rma.refresh_from_db()
    assert rma.status == "partially_received"
    assert rma.lines.get().quantity_received == 1
    assert world.loop.actions_for(loop_return["id"]) == []

    world.bp.control.receive(credit_id, rows=[{"rowId": row_id, "quantity": 2}])
    world.sync()
    rma.refresh_from_db()
    assert rma.status == "processed"
    assert rma.lines.get().quantity_received == 3
    assert world.loop.actions_for(loop_return["id"]).count("process") == 1


def test_quarantine_counts_as_received_not_restocked(world):
    sku = "HAT-" + world.bp.code
    sale = world.sale([(sku, 2, "30.00", "6.00")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 2}])
    world.sync()
    rma = rma_for(world, loop_return)
    world.bp.control.receive(rma.sales_credit.credit_id, quarantine=True)
    world.sync()
    line = rma.lines.get()
    assert (line.quantity_received, line.quantity_restocked) == (2, 0)


def test_sku_not_on_the_original_order_is_flagged_and_nothing_is_created(world):
    sku = "COAT-" + world.bp.code
    sale = world.sale([(sku, 1, "50.00", "10.00")])
    loop_return = world.loop_return(sale, [{"sku": sku}, {"sku": "NOT-SOLD-HERE"}])
    run = world.sync()
    assert world.credits() == []
    rma = rma_for(world, loop_return)
    assert rma.flagged
    assert "NOT-SOLD-HERE is not on original order" in rma.flag_reason
    assert world.loop.actions_for(loop_return["id"]) == ["flag", "note"]
    assert "NOT-SOLD-HERE" in world.loop.notes_for(loop_return["id"])[0]["content"]
    event = SyncEvent.objects.get(run=run, kind="credit")
    assert event.outcome == "flagged" and "NOT-SOLD-HERE" in event.message
    # Flagged once: the next run does not flag it again.
    world.sync()
    assert world.loop.actions_for(loop_return["id"]) == ["flag", "note"]


def test_more_units_returned_than_sold_is_flagged(world):
    sku = "SCARF-" + world.bp.code
    sale = world.sale([(sku, 1, "12.00", "2.40")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 2}])
    world.sync()
    assert world.credits() == []
    rma = rma_for(world, loop_return)
    assert "2 × " + sku + " returned but 1 sold" in rma.flag_reason
    assert rma.sales_credit.state == BindingState.BLOCKED


def test_units_credited_on_an_earlier_return_count_against_what_was_sold(world):
    sku = "BELT-" + world.bp.code
    sale = world.sale([(sku, 2, "40.00", "8.00")])
    first = world.loop_return(sale, [{"sku": sku, "quantity": 2}])
    world.sync()
    second = world.loop_return(sale, [{"sku": sku}])
    world.sync()
    assert len(world.credits()) == 1
    assert rma_for(world, first).sales_credit.state == BindingState.CREATED
    assert "already credited" in rma_for(world, second).flag_reason


def test_shortfall_after_the_credit_is_marked_received_is_flagged(world):
    world.connection.received_status_id = 12  # "Goods received" (a sales-credit status)
    world.connection.save()
    sku = "GLOVE-" + world.bp.code
    sale = world.sale([(sku, 2, "16.00", "3.20")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 2}])
    world.sync()
    binding = rma_for(world, loop_return).sales_credit
    row_id = next(iter(binding.row_map.values()))[0]
    world.bp.control.receive(binding.credit_id, rows=[{"rowId": row_id, "quantity": 1}])
    world.bp.control.set_order_status(binding.credit_id, 12)
    world.sync()
    rma = rma_for(world, loop_return)
    assert rma.flagged
    assert f"missing 1 × {sku}" in rma.flag_reason
    assert "flag" in world.loop.actions_for(loop_return["id"])
    assert "process" not in world.loop.actions_for(loop_return["id"])


def test_fees_appear_as_their_own_rows(world):
    world.connection.fee_nominal_code = "4040"
    world.connection.save()
    sku = "LAMP-" + world.bp.code
    sale = world.sale([(sku, 1, "40.00", "8.00")])
    world.loop_return(sale, [{"sku": sku}], handling_fee="3.50")
    world.sync()
    [credit] = world.credits()
    fee_rows = [r for r in credit["orderRows"].values() if not r["productId"]]
    assert len(fee_rows) == 1
    assert Decimal(fee_rows[0]["rowValue"]["rowNet"]["value"]) == Decimal("-3.50")
    assert fee_rows[0]["nominalCode"] == "4040"


def test_warehouse_mapping_chooses_the_credit_warehouse(world):
    world.connection.warehouse_mappings.create(destination_id="77", warehouse_id=3)
    sku = "MUG-" + world.bp.code
    sale = world.sale([(sku, 1, "8.00", "1.60")])
    world.loop_return(sale, [{"sku": sku}], destination_id="77")
    world.sync()
    assert world.credits()[0]["warehouseId"] == 3


def test_dry_run_writes_nothing(world):
    sku = "VASE-" + world.bp.code
    sale = world.sale([(sku, 1, "25.00", "5.00")])
    world.loop_return(sale, [{"sku": sku}])
    world.sync()  # the first return is credited for real
    sku2 = "BOWL-" + world.bp.code
    second = world.loop_return(world.sale([(sku2, 1, "12.00", "2.40")]), [{"sku": sku2}])

    def writes():
        return [r for r in world.bp.control.requests() if r["method"] != "GET"]

    def rows():
        return [m.objects.count() for m in (Rma, SalesCredit, SyncRun, SyncEvent)]

    writes_before, rows_before = len(writes()), rows()
    result = world.sync(dry_run=True)
    assert any("would create a credit" in line and sku2 in line for line in result.printed)
    assert result.requests_made > 0  # it did read Brightpearl to plan
    assert len(writes()) == writes_before  # …and wrote nothing there
    assert rows() == rows_before  # nor here (the new return's intake was rolled back)
    assert len(world.credits()) == 1
    assert world.loop.actions_for(second["id"]) == []


def test_dry_run_shows_the_credit_it_would_create(world):
    sku = "PLATE-" + world.bp.code
    sale = world.sale([(sku, 2, "24.00", "4.80")])
    loop_return = world.loop_return(sale, [{"sku": sku}])
    from connector.services.context import SyncContext
    from connector.services.sync import pull_from_platform

    pull_from_platform(SyncContext(connection=world.connection))  # intake only
    result = world.sync(dry_run=True)
    assert world.credits() == []
    assert SalesCredit.objects.filter(state=BindingState.CREATED).count() == 0
    assert any("would create a credit" in line and sku in line for line in result.printed)
    assert rma_for(world, loop_return).status == "approved"


def test_a_flagged_return_is_not_processed_until_staff_clear_the_flag(world, admin_client):
    sku = "CAP-" + world.bp.code
    sale = world.sale([(sku, 1, "15.00", "3.00")])
    loop_return = world.loop_return(sale, [{"sku": sku}])
    world.sync()
    rma = rma_for(world, loop_return)
    Rma.objects.filter(pk=rma.pk).update(
        flagged=True, flag_reason="Checked by hand", status="flagged"
    )
    world.bp.control.receive(rma.sales_credit.credit_id)
    world.sync()
    assert "process" not in world.loop.actions_for(loop_return["id"])
    assert rma.lines.get().quantity_received == 1

    from connector.services.retry import retry_items

    retry_items([rma.pk], clear_flags=True)
    world.sync()
    rma.refresh_from_db()
    assert rma.status == "processed"
    assert world.loop.actions_for(loop_return["id"]).count("process") == 1


def test_quarantine_then_release_is_restocked_by_polling_too(world):
    sku = "COAT-Q-" + world.bp.code
    sale = world.sale([(sku, 3, "90.00", "18.00")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 3}])
    world.sync()
    rma = rma_for(world, loop_return)
    world.bp.control.receive(rma.sales_credit.credit_id, quarantine=True)
    world.sync()
    rma.refresh_from_db()
    assert rma.status == "processed"  # received counts, wherever it was put
    assert rma.lines.get().quantity_restocked == 0
    world.bp.control.quarantine_release(2, world.products[sku], 2)
    world.sync()
    line = rma.lines.get()
    assert (line.quantity_received, line.quantity_restocked) == (3, 2)
    world.bp.control.quarantine_release(2, world.products[sku], 1)
    world.sync()
    assert rma.lines.get().quantity_restocked == 3
    world.sync()  # nothing new: stays put
    assert rma.lines.get().quantity_restocked == 3
