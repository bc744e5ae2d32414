"""Brightpearl resource searches: array rows plus ``metaData.columns``, paged by ``firstResult``.

Pure functions so the zipping and paging rules are tested without HTTP: :func:`zip_rows` turns
one page into dicts (never by hard-coded column position), :func:`iter_search` pages until
``metaData.morePagesAvailable`` is false, calling a ``fetch_page(params)`` the client supplies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import MalformedResponseError
from .idset import format_id_set


def column_names(meta_data: Mapping[str, Any]) -> list[str]:
    """Names of the result columns, in row order. Raises ``ValueError`` if the metadata is bad."""
    columns = meta_data.get("columns")
    if not isinstance(columns, list):
        raise ValueError("search metaData has no 'columns' list")
    names = []
    for column in columns:
        if not isinstance(column, Mapping) or not isinstance(column.get("name"), str):
            raise ValueError(f"search column without a name: {column!r}")
        names.append(column["name"])
    return names


def zip_rows(page: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Turn one search ``response`` (``results`` + ``metaData``) into a list of dicts.

    Raises ``ValueError`` if the page lacks ``results``/``metaData`` or a row's length differs
    from the column count (that would silently shift every value into the wrong field).
    """
    if not isinstance(page, Mapping):
        raise ValueError(f"search response is not an object: {type(page).__name__}")
    results = page.get("results")
    meta = page.get("metaData")
    if not isinstance(results, list):
        raise ValueError("search response has no 'results' list")
    if not isinstance(meta, Mapping):
        raise ValueError("search response has no 'metaData' object")
    names = column_names(meta)
    rows = []
    for row in results:
        if not isinstance(row, list) or len(row) != len(names):
            raise ValueError(
                f"search row has {len(row) if isinstance(row, list) else 'no'} values "
                f"for {len(names)} columns"
            )
        rows.append(dict(zip(names, row, strict=True)))
    return rows


def next_first_result(page: Mapping[str, Any], current_first: int) -> int | None:
    """The ``firstResult`` of the following page, or ``None`` when this was the last one."""
    meta = page.get("metaData") or {}
    if not meta.get("morePagesAvailable"):
        return None
    last = meta.get("lastResult")
    if isinstance(last, int) and not isinstance(last, bool) and last >= current_first:
        return last + 1
    returned = len(page.get("results") or [])
    if returned == 0:
        raise ValueError("search says more pages are available but returned no rows")
    return current_first + returned


def format_filter_value(value: Any) -> str:
    """Render one search filter value the way Brightpearl's query syntax expects.

    Booleans → ``true``/``false``; int collections → an ID set; a ``(from, to)`` tuple → a
    PERIOD (``from/to``, either side may be ``None`` for open-ended); datetimes → ISO 8601.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, tuple) and len(value) == 2:
        lo, hi = value
        return "{}/{}".format(
            "" if lo is None else format_filter_value(lo),
            "" if hi is None else format_filter_value(hi),
        )
    if isinstance(value, list | set | frozenset | range):
        values = list(value)
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return format_id_set(values)
        return ",".join(str(v) for v in values)
    return str(value)


def build_search_params(filters: Mapping[str, Any]) -> dict[str, str]:
    """Filters as query parameters; ``None`` values are left out."""
    return {k: format_filter_value(v) for k, v in filters.items() if v is not None}


def iter_search(
    fetch_page: Callable[[dict[str, str]], Any],
    params: Mapping[str, str] | None = None,
    *,
    page_size: int | None = None,
    max_pages: int = 10_000,
) -> Iterator[dict[str, Any]]:
    """Yield every row of a search as a dict, fetching pages lazily.

    ``fetch_page`` gets the query parameters (filters + ``firstResult`` [+ ``pageSize``]) and
    returns the unwrapped ``response``. A page that cannot be read raises
    :class:`MalformedResponseError` rather than a bare ``KeyError``.
    """
    first = 1
    for _ in range(max_pages):
        query = dict(params or {})
        query["firstResult"] = str(first)
        if page_size is not None:
            query["pageSize"] = str(page_size)
        page = fetch_page(query)
        try:
            rows = zip_rows(page)
            following = next_first_result(page, first)
        except ValueError as exc:
            raise MalformedResponseError(f"unreadable search page: {exc}") from exc
        yield from rows
        if following is None:
            return
        first = following
    raise MalformedResponseError(f"search did not finish within {max_pages} pages")
