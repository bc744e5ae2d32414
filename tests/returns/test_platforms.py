"""Registry, HTTP client plumbing and parsing helpers."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from returns.platforms import ReturnsPlatform, get_platform, registry
from returns.platforms.base import ChangeFeed, NeutralRma
from returns.platforms.errors import ServerError, TransportError, UnknownPlatform
from returns.platforms.http import JsonHttpClient
from returns.platforms.parsing import amount, timestamp


@pytest.mark.parametrize("kind", registry.adapter_kinds())
def test_registry_builds_every_adapter(kind):
    adapter = get_platform(
        kind,
        api_key="k",
        shop_name="s.myshopify.com",
        base_url="http://127.0.0.1:9",
        webhook_secret="w",
    )
    assert isinstance(adapter, ReturnsPlatform)
    assert adapter.kind == kind


def test_unknown_platform():
    with pytest.raises(UnknownPlatform):
        get_platform("shopify", api_key="k")


def test_transport_error_after_retries():
    client = JsonHttpClient(
        "http://127.0.0.1:9", {}, max_retries=1, sleep=lambda s: None, timeout=0.5
    )
    with pytest.raises(TransportError):
        client.request("GET", "/anything")
    assert client.calls == 2


def test_server_errors_are_retried_for_reads_only(loop_sandbox):
    client = JsonHttpClient(loop_sandbox.url, {}, max_retries=2, sleep=lambda s: None)
    # the sandbox answers an unknown control route with 404, a broken handler with 500
    original = loop_sandbox.route
    loop_sandbox.route = lambda request: 1 / 0
    try:
        with pytest.raises(ServerError):
            client.request("GET", "/x")
        assert client.calls == 3
        with pytest.raises(ServerError):
            client.request("POST", "/x", json_body={})
        assert client.calls == 4
    finally:
        loop_sandbox.route = original


def test_next_page_url_on_another_host_is_refused():
    client = JsonHttpClient("https://api.loopreturns.com/api/v1", {"X-Authorization": "k"})
    with pytest.raises(TransportError):
        client.url_for("https://evil.example.com/steal")


def test_change_feed_tracks_max_updated_at():
    early = datetime(2026, 1, 1, tzinfo=UTC)
    late = datetime(2026, 2, 1, tzinfo=UTC)
    feed = ChangeFeed(
        [
            NeutralRma("loop", "1", "open", updated_at=late),
            NeutralRma("loop", "2", "open", updated_at=early),
            NeutralRma("loop", "3", "open"),
        ]
    )
    assert [r.external_id for r in feed] == ["1", "2", "3"]
    assert feed.max_updated_at == late and feed.count == 3
    assert ChangeFeed([]).max_updated_at is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("63.30", Decimal("63.30")),
        (12, Decimal(12)),
        (None, None),
        ("", None),
        ("abc", "abc"),
        ("NaN", "NaN"),
        (True, "True"),
    ],
)
def test_amount(value, expected):
    assert amount(value) == expected


def test_timestamp_forms():
    assert timestamp("2023-01-01 00:00:00") == datetime(2023, 1, 1, tzinfo=UTC)
    assert timestamp("2023-01-01T00:00:00.000Z") == datetime(2023, 1, 1, tzinfo=UTC)
    assert timestamp("garbage") is None and timestamp(None) is None


def test_retry_after_is_honoured_and_capped():
    client = JsonHttpClient("http://x", {}, backoff=1.0, backoff_cap=5.0)
    assert client._delay(0, 2.5) == 2.5
    assert client._delay(0, 600) == 5.0
    assert 0.5 <= client._delay(0, None) <= 1.0
    assert 2.5 <= client._delay(10, None) <= 5.0
