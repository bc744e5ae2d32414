"""Returns that end after their credit, over real HTTP against the sandboxes: cancelled,
rejected or expired on the platform after the credit (moved to the cancelled status with a
note, exactly once, never paid; flagged when something was received or no status is set),
edited after the credit (rows adjusted while nothing is received, flagged otherwise, a lost
answer never applied twice), and keep-item lines (credited, processed without a receipt)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connector.models import BindingState, CreditChange, RefundPayment, SalesCredit, SyncEvent
from connector.services.connection_check import check_connection
from returns.models import Rma

pytestmark = pytest.mark.django_db

CANCELLED = 14  # the sandbox's "Credit cancelled" sales-credit status
STATUS_PUT = r"^/order-service/order/\d+/status/?$"
ROW_POST = r"^/order-service/order/\d+/row/?$"


def credited_return(world, lines=None, rows=None):
    sku = f"COAT-{world.bp.code}"
    rows = rows or [(sku, 2, "100.00", "20.00")]
    sale = world.sale(rows)
    loop_return = world.loop_return(sale, lines or [{"sku": sku, "quantity": 2}])
    world.sync()
    rma = Rma.objects.get(external_id=str(loop_return["id"]))
    assert rma.sales_credit.state == BindingState.CREATED
    return sale, loop_return, rma


def credit_of(world, rma) -> dict:
    credit_id = SalesCredit.objects.get(rma=rma).credit_id
    return next(o for o in world.state()["orders"] if o["id"] == credit_id)


def notes_on(world, credit_id) -> list[str]:
    return [n["text"] for n in world.state()["orderNotes"] if n["orderId"] == credit_id]


def events(rma, kind) -> list[SyncEvent]:
    return list(SyncEvent.objects.filter(rma=rma, kind=kind).order_by("pk"))


def requests_to(world, method, pattern) -> int:
    import re

    return sum(
        1
        for r in world.bp.control.requests()
        if r["method"] == method and re.search(pattern, r["path"])
    )


# --- ended after the credit ----------------------------------------------------------------------
def test_cancelled_after_credit_moves_it_to_the_cancelled_status_once_and_never_pays(world):
    world.connection.cancelled_credit_status_id = CANCELLED
    world.connection.save()
    _, loop_return, rma = credited_return(world)
    credit_id = rma.sales_credit.credit_id

    world.loop.set_state(loop_return["id"], "cancelled")
    world.sync()
    world.sync()  # the same cancellation seen again: nothing more

    assert credit_of(world, rma)["orderStatus"]["orderStatusId"] == CANCELLED
    ours = [t for t in notes_on(world, credit_id) if "do not refund" in t]
    assert len(ours) == 1 and "ended on the platform (cancelled)" in ours[0]
    assert requests_to(world, "PUT", STATUS_PUT) == 1
    [event] = events(rma, SyncEvent.Kind.ENDED)
    assert f"sales credit {credit_id} moved to the cancelled status {CANCELLED}" in event.message
    assert CreditChange.objects.get().state == BindingState.CREATED

    world.loop.add_refund(loop_return["id"], "200.00")
    world.sync()
    assert world.payments() == []
    payment = RefundPayment.objects.get()
    assert payment.state == BindingState.FAILED
    assert "the return ended on the platform after sales credit" in payment.last_error
    refund_event = events(rma, SyncEvent.Kind.REFUND)[-1]
    assert refund_event.outcome == SyncEvent.Outcome.FAILED
    assert "Not recorded" in refund_event.message


def test_a_lost_answer_to_the_status_change_is_adopted_not_repeated(world):
    world.connection.cancelled_credit_status_id = CANCELLED
    world.connection.save()
    _, loop_return, rma = credited_return(world)
    world.loop.set_state(loop_return["id"], "expired")
    world.bp.control.add_fault(STATUS_PUT, "drop", method="PUT", times=1)

    world.sync()
    world.sync()

    credit_id = rma.sales_credit.credit_id
    assert credit_of(world, rma)["orderStatus"]["orderStatusId"] == CANCELLED
    assert len([t for t in notes_on(world, credit_id) if "do not refund" in t]) == 1
    assert requests_to(world, "PUT", STATUS_PUT) == 1
    assert "already in the cancelled status" in events(rma, SyncEvent.Kind.ENDED)[-1].message


def test_cancelled_after_goods_were_received_is_flagged_not_cancelled(world):
    world.connection.cancelled_credit_status_id = CANCELLED
    world.connection.save()
    _, loop_return, rma = credited_return(world)
    credit_id = rma.sales_credit.credit_id
    row_id = rma.sales_credit.row_map[str(rma.lines.get().pk)][0]
    world.bp.control.receive(credit_id, rows=[{"rowId": row_id, "quantity": 1}])
    world.loop.set_state(loop_return["id"], "cancelled")

    world.sync()
    world.sync()

    rma.refresh_from_db()
    assert credit_of(world, rma)["orderStatus"]["orderStatusId"] != CANCELLED
    assert rma.flagged
    assert "Brightpearl already received goods against it" in rma.flag_reason
    assert "The credit was left as it is" in rma.flag_reason
    [event] = events(rma, SyncEvent.Kind.ENDED)
    assert event.outcome == SyncEvent.Outcome.FLAGGED
    assert requests_to(world, "PUT", STATUS_PUT) == 0


def test_cancelled_with_no_cancelled_status_is_noted_and_flagged_once(world):
    _, loop_return, rma = credited_return(world)
    credit_id = rma.sales_credit.credit_id
    world.loop.set_state(loop_return["id"], "cancelled")

    world.sync()
    world.sync()

    rma.refresh_from_db()
    assert credit_of(world, rma)["orderStatus"]["orderStatusId"] != CANCELLED
    assert len([t for t in notes_on(world, credit_id) if "do not refund" in t]) == 1
    assert rma.flagged and "No status for cancelled returns' credits" in rma.flag_reason
    assert len(events(rma, SyncEvent.Kind.ENDED)) == 1


def test_returngo_rejection_after_credit_cancels_the_credit(rg_world):
    world = rg_world
    world.connection.cancelled_credit_status_id = CANCELLED
    world.connection.save()
    sku = f"HAT-{world.bp.code}"
    sale = world.sale([(sku, 1, "30.00", "6.00")])
    number = world.returngo.add_rma(
        items=[{"sku": sku, "price": "36.00"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        fire=False,
    )["rmaSummary"]["rmaId"]
    world.sync()
    rma = Rma.objects.get(external_id=str(number))
    world.returngo.set_status(number, "Rejected", fire=False)
    world.sync()
    assert credit_of(world, rma)["orderStatus"]["orderStatusId"] == CANCELLED
    assert "ended on the platform (Rejected)" in events(rma, SyncEvent.Kind.ENDED)[0].message


# --- edited after the credit ---------------------------------------------------------------------
def edit_world(world):
    a, b, c = (f"{x}-{world.bp.code}" for x in ("SHIRT", "SOCK", "TIE"))
    sale = world.sale([(a, 2, "40.00", "8.00"), (b, 1, "5.00", "1.00"), (c, 1, "15.00", "3.00")])
    loop_return = world.loop_return(sale, [{"sku": a, "quantity": 2}, {"sku": b}])
    world.sync()
    rma = Rma.objects.get(external_id=str(loop_return["id"]))
    return (a, b, c), loop_return, rma


def credit_rows(world, rma) -> dict[str, tuple[str, str]]:
    by_product = {v: k for k, v in world.products.items()}
    return {
        by_product[r["productId"]]: (r["quantity"]["magnitude"], r["rowValue"]["rowNet"]["value"])
        for r in credit_of(world, rma)["orderRows"].values()
        if r.get("productId")
    }


def assert_adjusted_to(world, rma, a: str, c: str) -> None:
    """The credit holds the rows of lines a (kept, changed) and c (added), b's is gone."""
    rows = credit_rows(world, rma)
    assert set(rows) == {a, c}
    assert rows[a][0].startswith("1") and rows[a][1].startswith("20")
    assert rows[c][0].startswith("1") and rows[c][1].startswith("15")
    [event] = events(rma, SyncEvent.Kind.ADJUST)
    assert "1 row(s) changed, 1 row(s) added, 1 row(s) removed" in event.message
    assert requests_to(world, "POST", ROW_POST) == 1


def test_an_edit_before_anything_arrived_adjusts_the_credit_rows(world):
    (a, b, c), loop_return, rma = edit_world(world)
    world.loop.edit_return(loop_return["id"], [{"sku": a}, {"sku": c}])

    world.sync()
    world.sync()
    assert_adjusted_to(world, rma, a, c)

    # The adjusted credit receives like any other: everything in → processed.
    world.bp.control.receive(rma.sales_credit.credit_id)
    world.sync()
    rma.refresh_from_db()
    assert rma.status == "processed"
    assert "process" in world.loop.actions_for(loop_return["id"])


def test_a_lost_answer_to_an_added_row_is_adopted_after_the_lease(world):
    (a, b, c), loop_return, rma = edit_world(world)
    world.loop.edit_return(loop_return["id"], [{"sku": a, "quantity": 2}, {"sku": b}, {"sku": c}])
    world.bp.control.add_fault(ROW_POST, "drop", method="POST", times=1)

    world.sync()
    change = CreditChange.objects.get()
    assert change.state == BindingState.ATTEMPTING
    world.sync()  # within the lease: nothing is sent again
    assert requests_to(world, "POST", ROW_POST) == 1
    CreditChange.objects.filter(pk=change.pk).update(
        attempt_started_at=timezone.now() - timedelta(hours=1)
    )  # the lease has passed
    world.sync()

    assert requests_to(world, "POST", ROW_POST) == 1
    assert list(credit_rows(world, rma)) == [a, b, c]
    assert CreditChange.objects.get().state == BindingState.CREATED
    assert "its rows already matched" in events(rma, SyncEvent.Kind.ADJUST)[-1].message


def test_an_edit_after_goods_arrived_is_flagged_with_the_reason(world):
    (a, b, c), loop_return, rma = edit_world(world)
    binding = rma.sales_credit
    line_b = rma.lines.get(sku=b)
    world.bp.control.receive(
        binding.credit_id, rows=[{"rowId": binding.row_map[str(line_b.pk)][0], "quantity": 1}]
    )
    world.sync()  # the receipt is read: 1 × b received
    world.loop.edit_return(loop_return["id"], [{"sku": a, "quantity": 2}, {"sku": b}, {"sku": c}])

    world.sync()
    world.sync()

    rma.refresh_from_db()
    assert rma.flagged
    assert "was edited after sales credit" in rma.flag_reason
    assert f"Brightpearl already received 1 × {b} against it" in rma.flag_reason
    assert set(credit_rows(world, rma)) == {a, b}
    assert world.loop.actions_for(loop_return["id"]).count("flag") == 1


def test_returngo_edit_adjusts_the_credit(rg_world):
    world = rg_world
    sku = f"BAG-{world.bp.code}"
    sale = world.sale([(sku, 3, "60.00", "12.00")])
    number = world.returngo.add_rma(
        items=[{"sku": sku, "quantity": 3, "price": "24.00"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        fire=False,
    )["rmaSummary"]["rmaId"]
    world.sync()
    rma = Rma.objects.get(external_id=str(number))
    world.returngo.edit_rma(number, [{"sku": sku, "quantity": 1, "price": "24.00"}], fire=False)
    # An edit of items adds no event to ReturnGO's listing summary, so a poll inside the window
    # overlap trusts the copy it just read (docs/returns-platforms.md); the edit is seen through
    # its webhook, or when the return is next listed after that window — as here, our copy
    # having been read an hour ago.
    Rma.objects.filter(pk=rma.pk).update(platform_updated_at=timezone.now() - timedelta(hours=1))
    world.sync()
    assert credit_rows(world, rma)[sku][0].startswith("1")


# --- keep-item lines -----------------------------------------------------------------------------
def test_keep_item_lines_are_credited_and_processed_without_a_receipt(world):
    sku = f"MUG-{world.bp.code}"
    sale = world.sale([(sku, 1, "8.00", "1.60")])
    loop_return = world.loop_return(sale, [{"sku": sku, "resolution": "keep"}])
    world.sync()
    rma = Rma.objects.get(external_id=str(loop_return["id"]))
    assert rma.lines.get().keep_item
    assert rma.status == "processed"
    assert len(credit_of(world, rma)["orderRows"]) == 1
    assert "process" in world.loop.actions_for(loop_return["id"])
    [event] = events(rma, SyncEvent.Kind.PROCESS)
    assert "the customer keeps every item" in event.message


def test_a_mixed_return_waits_only_for_the_goods_that_come_back(world):
    keep, back = f"PEN-{world.bp.code}", f"LAMP-{world.bp.code}"
    sale = world.sale([(keep, 1, "2.00", "0.40"), (back, 1, "30.00", "6.00")])
    loop_return = world.loop_return(sale, [{"sku": keep, "resolution": "keep"}, {"sku": back}])
    world.sync()
    rma = Rma.objects.get(external_id=str(loop_return["id"]))
    assert rma.status == "credited"
    binding = rma.sales_credit
    line = rma.lines.get(sku=back)
    world.bp.control.receive(
        binding.credit_id, rows=[{"rowId": binding.row_map[str(line.pk)][0], "quantity": 1}]
    )
    world.sync()
    rma.refresh_from_db()
    assert rma.status == "processed" and not rma.flagged


def test_returngo_no_shipment_required_items_are_keep_items(rg_world):
    world = rg_world
    sku = f"CARD-{world.bp.code}"
    sale = world.sale([(sku, 1, "4.00", "0.80")])
    number = world.returngo.add_rma(
        items=[{"sku": sku, "price": "4.80", "keep_item": True}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        fire=False,
    )["rmaSummary"]["rmaId"]
    world.sync()
    rma = Rma.objects.get(external_id=str(number))
    assert rma.lines.get().keep_item
    assert rma.status == "processed"


# --- the setting ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status_id", "ok", "words"),
    [
        (CANCELLED, True, "sales-credit status 'Credit cancelled'"),
        (5, False, "is a status for SO orders"),
        (15, False, "is hidden or disabled"),
    ],
)
def test_the_check_validates_the_cancelled_status(world, status_id, ok, words):
    world.connection.cancelled_credit_status_id = status_id
    world.connection.save()
    [item] = [
        i for i in check_connection(world.connection) if i.field == "cancelled_credit_status_id"
    ]
    assert item.ok is ok
    assert words in item.message


def test_an_edit_of_a_credit_whose_rows_were_never_read_back_reads_them_first(world):
    """The run that made the credit stopped before reading its rows back (a crash, or its turn
    or budget ended): the edit reads them before it writes, so the kept line's row is changed
    in place and the removed one deleted — not a row added beside rows it cannot tell apart."""
    (a, b, c), loop_return, rma = edit_world(world)
    SalesCredit.objects.filter(rma=rma).update(row_map={})
    world.loop.edit_return(loop_return["id"], [{"sku": a}, {"sku": c}])

    world.sync()
    world.sync()
    assert_adjusted_to(world, rma, a, c)
    assert SalesCredit.objects.get(rma=rma).row_map
