"""The pure rules that adjust a credit's rows to an edited return: compared with what
Brightpearl holds now, so a retry after a lost answer finds nothing left to do."""

from connector.services.credit_rows_edit import planned_with_row_ids, row_operations, row_post


def planned(line, part, qty, net, tax="0.00", product=7, row_id=None):
    row = {
        "line_id": line,
        "externalRef": f"rbc:1:loop:9/{line}.{part}",
        "productId": product,
        "name": f"P{product}",
        "quantity": str(qty),
        "net": net,
        "tax": tax,
        "taxCode": "T20",
    }
    if row_id is not None:
        row["rowId"] = row_id
    return row


def order_row(product, qty, net, tax="0.00"):
    return {
        "productId": product,
        "quantity": {"magnitude": f"{qty}.0000"},
        "rowValue": {"rowNet": {"value": net}, "rowTax": {"value": tax}},
    }


def test_row_ids_come_from_the_row_map_in_part_order_unless_stored():
    rows = [planned(1, 0, 1, "5.00"), planned(1, 1, 1, "5.00"), planned(2, 0, 1, "3.00", row_id=99)]
    rows.append({"line_id": None, "externalRef": "fee", "quantity": "1", "net": "-1", "tax": "0"})
    with_ids = planned_with_row_ids(rows, {"1": [10, 11], "2": [12]})
    assert [r["rowId"] for r in with_ids] == [10, 11, 99]


def test_changed_added_and_removed_rows():
    old = [planned(1, 0, 2, "20.00", row_id=10), planned(2, 0, 1, "5.00", product=8, row_id=11)]
    desired = [planned(1, 0, 1, "10.00"), planned(3, 0, 1, "7.00", product=9)]
    credit = {"10": order_row(7, 2, "20.00"), "11": order_row(8, 1, "5.00")}
    ops, kept = row_operations(old, desired, credit)
    assert [(op, row_id) for op, row_id, _ in ops] == [
        ("patch", 10),
        ("post", None),
        ("delete", 11),
    ]
    assert kept == {desired[0]["externalRef"]: 10}


def test_a_retry_after_everything_landed_has_nothing_to_do():
    old = [planned(1, 0, 2, "20.00", row_id=10), planned(2, 0, 1, "5.00", product=8, row_id=11)]
    desired = [planned(1, 0, 1, "10.00"), planned(3, 0, 1, "7.00", product=9)]
    # the PATCH, the POST (row 12, no externalRef) and the DELETE all reached Brightpearl
    credit = {"10": order_row(7, 1, "10.00"), "12": order_row(9, 1, "7.00")}
    ops, kept = row_operations(old, desired, credit)
    assert ops == []
    assert kept == {desired[0]["externalRef"]: 10, desired[1]["externalRef"]: 12}


def test_a_row_of_another_value_is_not_adopted():
    desired = [planned(3, 0, 1, "7.00", product=9)]
    ops, _ = row_operations([], desired, {"12": order_row(9, 1, "6.99")})
    assert [op for op, _, _ in ops] == ["post"]


def test_the_row_post_body_uses_the_documented_nesting():
    body = row_post({**planned(3, 0, 2, "14.00", "2.80", product=9), "nominalCode": "4000"})
    assert body == {
        "productId": 9,
        "productName": "P9",
        "quantity": {"magnitude": "2"},
        "rowValue": {"taxCode": "T20", "rowNet": {"value": "14.00"}, "rowTax": {"value": "2.80"}},
        "nominalCode": "4000",
    }
