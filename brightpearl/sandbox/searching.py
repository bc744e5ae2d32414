"""Brightpearl's resource-search protocol: filters, paging, column trimming, sorting.

Results are rows of arrays plus `metaData.columns`; `firstResult` is 1-based; an empty result has
no `firstResult`/`lastResult` (seen in recorded traffic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .common import ApiError, Request, parse_iso
from .idsets import IdSetError, parse_id_set

# Page size: clients use 500 and a third party documents 1-500; the real default/max are
# UNCONFIRMED, so the sandbox uses 500 for both.
MAX_PAGE_SIZE = 500
CONTROL_PARAMS = {"firstResult", "pageSize", "columns", "sort"}


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # IDSET, INTEGER, STRING, PERIOD, BOOLEAN, DECIMAL
    get: Callable[[dict], object]
    filterable: bool = True
    sortable: bool = True

    def meta(self) -> dict:
        return {
            "name": self.name,
            "sortable": self.sortable,
            "filterable": self.filterable,
            "reportDataType": self.data_type,
            "referenceData": [],
        }


def _period(text: str) -> tuple[datetime | None, datetime | None]:
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        start = parse_iso(start_text) if start_text.strip() else None
        end = parse_iso(end_text) if end_text.strip() else None
        return start, end
    start = parse_iso(text)
    if len(text.strip()) <= 10:  # a bare date means that whole day
        return start, start + timedelta(days=1)
    return start, start


def _matcher(column: Column, raw: str) -> Callable[[object], bool]:
    try:
        if column.data_type == "IDSET":
            wanted = set(parse_id_set(raw))
            return lambda value: value is not None and int(value) in wanted
        if column.data_type == "INTEGER":
            wanted_int = int(raw)
            return lambda value: value is not None and int(value) == wanted_int
        if column.data_type == "BOOLEAN":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            wanted_bool = raw.lower() == "true"
            return lambda value: bool(value) == wanted_bool
        if column.data_type == "PERIOD":
            start, end = _period(raw)

            def in_period(value: object) -> bool:
                if not value:
                    return False
                moment = parse_iso(str(value))
                if start and moment < start:
                    return False
                return not (end and moment > end)

            return in_period
    except (IdSetError, ValueError) as exc:
        raise ApiError(400, "CMNC-400", f"Invalid value for filter {column.name}: {raw}") from exc
    # STRING / SEARCH_STRING: exact match (whether Brightpearl matches partially is UNCONFIRMED).
    return lambda value: value is not None and str(value) == raw


def run_search(
    req: Request,
    columns: list[Column],
    records: list[dict],
    *,
    extra_filters: dict[str, Callable[[dict, str], bool]] | None = None,
    reference: Callable[[list[dict]], dict] | None = None,
) -> dict:
    """Filter, sort and page `records`; return the full body (response + reference)."""
    by_name = {column.name: column for column in columns}
    selected = _filtered(req, by_name, records, extra_filters or {})
    sorting = _sort(req, columns, by_name, selected)
    wanted = columns
    if req.arg("columns"):
        names = [n.strip() for n in req.arg("columns").split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ApiError(400, "CMNC-400", f"Unknown columns: {','.join(unknown)}")
        wanted = [by_name[n] for n in names]

    try:
        first = int(req.arg("firstResult") or 1)
        page_size = int(req.arg("pageSize") or MAX_PAGE_SIZE)
    except ValueError as exc:
        raise ApiError(400, "CMNC-400", "firstResult and pageSize must be integers") from exc
    if first < 1 or page_size < 1:
        raise ApiError(400, "CMNC-400", "firstResult and pageSize must be positive")
    page_size = min(page_size, MAX_PAGE_SIZE)
    page = selected[first - 1 : first - 1 + page_size]
    meta: dict = {
        "morePagesAvailable": first - 1 + len(page) < len(selected),
        "resultsAvailable": len(selected),
        "resultsReturned": len(page),
    }
    if page:
        meta["firstResult"] = first
        meta["lastResult"] = first + len(page) - 1
    meta["columns"] = [c.meta() for c in wanted]
    meta["sorting"] = sorting
    body = {
        "response": {"results": [[c.get(r) for c in wanted] for r in page], "metaData": meta},
        "reference": reference(page) if reference else {},
    }
    return body


def _filtered(
    req: Request,
    by_name: dict[str, Column],
    records: list[dict],
    extra_filters: dict[str, Callable[[dict, str], bool]],
) -> list[dict]:
    """The records every filter of the query accepts (an unknown filter is a 400)."""
    selected = list(records)
    for name, values in req.query.items():
        if name in CONTROL_PARAMS:
            continue
        raw = values[-1]
        if name in extra_filters:
            selected = [r for r in selected if extra_filters[name](r, raw)]
            continue
        column = by_name.get(name)
        if column is None or not column.filterable:
            raise ApiError(400, "CMNC-400", f"Unknown search filter: {name}")
        match = _matcher(column, raw)
        selected = [r for r in selected if match(column.get(r))]
    return selected


def _sort(
    req: Request, columns: list[Column], by_name: dict[str, Column], selected: list[dict]
) -> list[dict]:
    """Sort `selected` in place by the query's `sort` (first column ascending by default);
    returns the sorting as the metadata describes it."""
    sort_spec = req.arg("sort") or f"{columns[0].name}.ASC"
    sorting = []
    for part in reversed(sort_spec.split(",")):
        name, _, direction = part.strip().partition(".")
        direction = (direction or "ASC").upper()
        column = by_name.get(name)
        if column is None or direction not in ("ASC", "DESC"):
            raise ApiError(400, "CMNC-400", f"Invalid sort: {part}")
        selected.sort(key=lambda r, c=column: _sort_key(c.get(r)), reverse=direction == "DESC")
        sorting.insert(0, {"filterable": {"name": name}, "direction": direction})
    return sorting


def _sort_key(value: object) -> tuple:
    if value is None:
        return (0, 0, "")
    if isinstance(value, bool | int | float):
        return (1, value, "")
    return (2, 0, str(value))
