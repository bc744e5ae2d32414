"""Search responses: rows zipped with metaData.columns, paging by firstResult, filter syntax."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brightpearl.errors import MalformedResponseError
from brightpearl.search import (
    build_search_params,
    format_filter_value,
    iter_search,
    next_first_result,
    zip_rows,
)


def page(columns, rows, *, more=False, first=None, last=None):
    meta = {"morePagesAvailable": more, "columns": [{"name": c} for c in columns]}
    if first is not None:
        meta["firstResult"] = first
        meta["lastResult"] = last
    meta["resultsReturned"] = len(rows)
    return {"results": rows, "metaData": meta}


def test_zip_rows_uses_column_names_not_positions():
    p = page(["orderId", "orderTypeId", "externalRef"], [[324, 3, "loop:1"], [325, 1, None]])
    assert zip_rows(p) == [
        {"orderId": 324, "orderTypeId": 3, "externalRef": "loop:1"},
        {"orderId": 325, "orderTypeId": 1, "externalRef": None},
    ]


def test_empty_results_without_first_and_last():
    p = page(["orderId"], [])
    assert zip_rows(p) == []
    assert next_first_result(p, 1) is None


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"results": []},
        {"metaData": {"columns": []}},
        {"results": [[1, 2]], "metaData": {"columns": [{"name": "a"}]}},
        {"results": [[1]], "metaData": {"columns": [{"nom": "a"}]}},
        {"results": "x", "metaData": {"columns": []}},
        {"results": [], "metaData": {}},
        [],
    ],
)
def test_zip_rows_rejects_malformed_pages(bad):
    with pytest.raises(ValueError):
        zip_rows(bad)


@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True),
    st.integers(min_value=0, max_value=20),
)
def test_zip_rows_property(columns, n_rows):
    rows = [[f"{c}-{i}" for c in columns] for i in range(n_rows)]
    out = zip_rows(page(columns, rows))
    assert len(out) == n_rows
    for i, row in enumerate(out):
        assert list(row) == columns
        assert all(row[c] == f"{c}-{i}" for c in columns)


def fake_api(total, page_size, columns=("id", "name")):
    """A fetch_page that serves `total` rows, `page_size` per page, and records queries."""
    calls = []

    def fetch(query):
        calls.append(dict(query))
        first = int(query["firstResult"])
        ids = list(range(first, min(first + page_size, total + 1)))
        rows = [[i, f"n{i}"] for i in ids]
        if not rows:
            return page(columns, [])
        return page(columns, rows, more=ids[-1] < total, first=first, last=ids[-1])

    return fetch, calls


@given(st.integers(min_value=0, max_value=120), st.integers(min_value=1, max_value=25))
def test_iter_search_pages_until_no_more(total, size):
    fetch, calls = fake_api(total, size)
    rows = list(iter_search(fetch, {"orderTypeId": "3"}))
    assert [r["id"] for r in rows] == list(range(1, total + 1))
    assert len(calls) == max(1, -(-total // size))
    assert [c["firstResult"] for c in calls] == [str(1 + i * size) for i in range(len(calls))]
    assert all(c["orderTypeId"] == "3" for c in calls)


def test_iter_search_is_lazy_and_sends_page_size():
    fetch, calls = fake_api(10, 3)
    it = iter_search(fetch, {}, page_size=3)
    assert calls == []
    next(it)
    assert len(calls) == 1 and calls[0]["pageSize"] == "3"


def test_iter_search_without_last_result_falls_back_to_count():
    served = []

    def fetch(query):
        served.append(query["firstResult"])
        if query["firstResult"] == "1":
            return {
                "results": [[1], [2]],
                "metaData": {"morePagesAvailable": True, "columns": [{"name": "id"}]},
            }
        return page(["id"], [[3]])

    assert [r["id"] for r in iter_search(fetch)] == [1, 2, 3]
    assert served == ["1", "3"]


def test_iter_search_malformed_page_raises_typed_error():
    with pytest.raises(MalformedResponseError):
        list(iter_search(lambda q: {"results": [[1]]}))
    with pytest.raises(MalformedResponseError):
        list(
            iter_search(
                lambda q: {"results": [], "metaData": {"morePagesAvailable": True, "columns": []}}
            )
        )


def test_filter_values():
    assert format_filter_value(True) == "true"
    assert format_filter_value(False) == "false"
    assert format_filter_value([3, 1, 2, 9]) == "1-3,9"
    assert format_filter_value(["a", "b"]) == "a,b"
    start = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    assert format_filter_value((start, None)) == "2026-07-01T00:00:00+00:00/"
    assert format_filter_value((None, dt.date(2026, 1, 2))) == "/2026-01-02"
    assert format_filter_value("loop:return:1") == "loop:return:1"
    assert build_search_params({"a": 1, "b": None, "c": "x"}) == {"a": "1", "c": "x"}
