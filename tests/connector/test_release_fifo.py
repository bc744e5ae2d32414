"""Pure: quarantine releases are attributed to the oldest quarantined units first."""

from hypothesis import given
from hypothesis import strategies as st

from connector.services.receipts import release_fifo


def move(mid, quantity, order=None, row=None, when="2026-01-01T00:00:00Z"):
    return {
        "goodsMovementId": mid,
        "quantity": quantity,
        "orderId": order,
        "purchaseOrderRowId": row,
        "updatedOn": when,
    }


def test_oldest_units_are_released_first_and_foreign_stock_takes_its_turn():
    moves = [
        move(1, 2, order=10, row=100),
        move(2, 1),  # quarantined by something that is not a credit of ours
        move(3, 3, order=11, row=110),
        move(4, -4),  # released 4: our 2, the foreign 1, then 1 of credit 11
    ]
    assert release_fifo(moves) == {(10, 100): 2, (11, 110): 1}


def test_order_is_by_time_then_movement_id_not_by_list_position():
    moves = [move(9, -1, when="2026-01-02T00:00:00Z"), move(3, 1, order=5, row=50)]
    assert release_fifo(moves) == {(5, 50): 1}


@given(st.lists(st.integers(min_value=-5, max_value=5).filter(bool), max_size=30))
def test_never_attributes_more_than_was_held_or_released(quantities):
    moves = [move(i, q, order=1, row=i) for i, q in enumerate(quantities)]
    taken = release_fifo(moves)
    held = {(1, i): q for i, q in enumerate(quantities) if q > 0}
    assert all(0 < units <= held[key] for key, units in taken.items())
    assert sum(taken.values()) <= -sum(q for q in quantities if q < 0)
