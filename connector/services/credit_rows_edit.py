"""Pure rules for adjusting a credit's rows to an edited return (no I/O).

Rows are compared with what Brightpearl has *now* (Order GET `orderRows`, read just before),
so the operations are the same whether this is the first attempt or a retry after a lost
answer: a PATCH that landed leaves nothing to patch, a DELETE that landed leaves no row, and a
POSTed row that landed (Order Row POST takes no externalRef) is recognised — an unclaimed row
of the same product, quantity and net — and adopted instead of posted again.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def _dec(value: Any) -> Decimal:
    return Decimal(str(value if value not in (None, "") else 0))


def planned_with_row_ids(planned: list[dict], row_map: Mapping[str, list]) -> list[dict]:
    """The credit's product rows as last planned, each with its Brightpearl row ID (stored
    as ``rowId`` after an adjustment; otherwise the row map's IDs of its line, in order)."""
    taken: dict[str, int] = {}
    out = []
    for row in planned:
        line = row.get("line_id")
        if line is None:
            continue
        row_id = row.get("rowId")
        if row_id is None:
            ids = list(row_map.get(str(line)) or [])
            position = taken.get(str(line), 0)
            row_id = ids[position] if position < len(ids) else None
            taken[str(line)] = position + 1
        out.append({**row, "rowId": row_id})
    return out


def _values(order_row: Mapping[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    value = order_row.get("rowValue") or {}
    return (
        _dec((order_row.get("quantity") or {}).get("magnitude")),
        _dec((value.get("rowNet") or {}).get("value")),
        _dec((value.get("rowTax") or {}).get("value")),
    )


def _same(row: Mapping[str, Any], order_row: Mapping[str, Any]) -> bool:
    return _values(order_row) == (_dec(row["quantity"]), _dec(row["net"]), _dec(row["tax"]))


def row_operations(
    old: list[dict], desired: list[dict], credit_rows: Mapping[str, Mapping[str, Any]]
) -> tuple[list[tuple[str, int | None, dict]], dict[str, int]]:
    """What to do to the credit's rows: ([(op, row ID, row)], externalRef → row ID kept).

    ``op`` is ``patch`` (same line and part, other quantity or money), ``post`` (a row the
    credit does not have) or ``delete`` (a row of ours the return no longer has). Rows are
    keyed by the externalRef the plan gives them (RMA line and part)."""
    present = {int(k): v for k, v in credit_rows.items()}
    old_by_ref = {r["externalRef"]: r for r in old if r.get("rowId") in present}
    claimed = {int(r["rowId"]) for r in old_by_ref.values()}
    ops: list[tuple[str, int | None, dict]] = []
    kept: dict[str, int] = {}
    for row in desired:
        ref = row["externalRef"]
        before = old_by_ref.pop(ref, None)
        if before is not None:
            row_id = int(before["rowId"])
            kept[ref] = row_id
            if not _same(row, present[row_id]):
                ops.append(("patch", row_id, row))
            continue
        adopted = next(
            (
                rid
                for rid, order_row in sorted(present.items())
                if rid not in claimed
                and order_row.get("productId") == row.get("productId")
                and _same(row, order_row)
            ),
            None,
        )
        if adopted is not None:  # a row an earlier attempt posted, whose answer was lost
            claimed.add(adopted)
            kept[ref] = adopted
            continue
        ops.append(("post", None, row))
    ops += [("delete", int(r["rowId"]), r) for r in old_by_ref.values()]
    return ops, kept


def row_patch(row: Mapping[str, Any]) -> list[dict]:
    """Order Row PATCH operations (JSON Patch on the documented paths)."""
    return [
        {"op": "replace", "path": "/quantity/magnitude", "value": str(row["quantity"])},
        {"op": "replace", "path": "/rowValue/rowNet/value", "value": str(row["net"])},
        {"op": "replace", "path": "/rowValue/rowTax/value", "value": str(row["tax"])},
    ]


def row_post(row: Mapping[str, Any]) -> dict:
    """Order Row POST body (documented nesting) for a planned credit row."""
    body: dict[str, Any] = {
        "productName": row.get("name"),
        "quantity": {"magnitude": str(row["quantity"])},
        "rowValue": {
            "taxCode": row["taxCode"],
            "rowNet": {"value": str(row["net"])},
            "rowTax": {"value": str(row["tax"])},
        },
    }
    if row.get("productId"):
        body["productId"] = row["productId"]
    if row.get("nominalCode"):
        body["nominalCode"] = str(row["nominalCode"])
    return body
