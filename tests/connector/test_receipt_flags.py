"""What Brightpearl received, against what was returned: surplus and unknown items are flagged.

The Brightpearl sandbox refuses to receive more than a credit row holds or a product that is
not on the credit, so these goods-in notes are given to the receipt step directly, shaped as
Brightpearl's Goods-in note GET returns them."""

import pytest

from connector.services.context import SyncContext
from connector.services.receipts import apply_receipt, tally_receipts
from returns.models import Rma

pytestmark = pytest.mark.django_db


def note(*moves, status="CLOSED"):
    return {
        "goodsNoteId": 1,
        "orderId": 0,
        "goodsNoteStatus": status,
        "goodsMoved": [
            {
                "productId": product,
                "purchaseOrderRowId": row,
                "quantity": qty,
                "destinationLocationId": location,
            }
            for product, row, qty, location in moves
        ],
    }


def test_tally_maps_rows_to_lines_and_separates_quarantine():
    tally = tally_receipts(
        {"7": [70], "8": [80, 81]},
        [
            note((1, 70, 2, 5), (2, 80, 1, 9), (2, 81, 1, 5)),
            note((1, 70, 5, 5), status="CANCELLED"),
        ],
        quarantine_locations={9},
    )
    assert dict(tally.received) == {7: 2, 8: 2}
    assert dict(tally.restocked) == {7: 2, 8: 1}
    assert tally.unexpected == []


def test_tally_reports_a_product_that_is_not_on_the_return():
    tally = tally_receipts({"7": [70]}, [note((99, 555, 1, 5))], quarantine_locations=set())
    assert tally.unexpected == ["1 × product 99 (row 555) that is not on the return"]


@pytest.fixture
def credited(world):
    sku = "RUG-" + world.bp.code
    sale = world.sale([(sku, 2, "80.00", "16.00")])
    loop_return = world.loop_return(sale, [{"sku": sku}])
    world.sync()
    rma = Rma.objects.get(external_id=str(loop_return["id"]))
    return world, rma, loop_return


def test_surplus_is_flagged_on_the_platform(credited):
    world, rma, loop_return = credited
    binding = rma.sales_credit
    [row_id] = binding.row_map[str(rma.lines.get().pk)]
    ctx = SyncContext(connection=world.connection)
    apply_receipt(ctx, binding, [note((0, row_id, 2, 0))], None)
    rma.refresh_from_db()
    assert rma.flagged
    assert "Brightpearl received 1 more × RUG-" in rma.flag_reason
    assert world.loop.actions_for(loop_return["id"]) == ["flag", "note"]
    assert "process" not in world.loop.actions_for(loop_return["id"])


def test_unknown_item_is_flagged_with_the_reason(credited):
    world, rma, loop_return = credited
    binding = rma.sales_credit
    [row_id] = binding.row_map[str(rma.lines.get().pk)]
    ctx = SyncContext(connection=world.connection)
    apply_receipt(ctx, binding, [note((0, row_id, 1, 0), (4242, 999999, 1, 0))], None)
    rma.refresh_from_db()
    assert rma.flagged
    assert "product 4242 (row 999999) that is not on the return" in rma.flag_reason
    # Flagged once: the same evidence again does not flag again.
    apply_receipt(
        SyncContext(connection=world.connection),
        binding,
        [note((0, row_id, 1, 0), (4242, 999999, 1, 0))],
        None,
    )
    assert world.loop.actions_for(loop_return["id"]).count("flag") == 1
