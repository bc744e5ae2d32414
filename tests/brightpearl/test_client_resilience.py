"""Batching, paging, throttling (also across processes via Redis), token refresh, timeouts and the
no-duplicate-write rules, against the Brightpearl sandbox."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid

import pytest
import redis
import requests

from brightpearl import (
    BrightpearlClient,
    OAuthAuth,
    PrivateAppAuth,
    RedisThrottleStore,
    ServerError,
    ThrottledError,
    TokenRefreshError,
    TransportError,
    ValidationError,
)

REDIS_URL = "redis://127.0.0.1:6379/15"


def ctl(acct, method, path, body=None):
    resp = requests.request(
        method, f"{acct.server_url}/_sandbox/{acct.code}{path}", json=body, timeout=10
    )
    assert resp.status_code < 300, resp.text
    return resp.json()


def api_requests(acct):
    return ctl(acct, "GET", "/requests")["requests"]


def make_client(acct, **kwargs):
    kwargs.setdefault("auth", PrivateAppAuth(acct.app_ref, acct.account_token))
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("retry_backoff", 0.01)
    kwargs.setdefault("max_throttle_wait", 2.0)
    return BrightpearlClient(acct.code, base_url_template=acct.api_url_template, **kwargs)


def seed_orders(acct, n):
    contact = ctl(acct, "POST", "/seed", {"contacts": [{"firstName": "Bulk"}]})["contacts"][0]
    orders = [{"orderTypeCode": "SO", "contactId": contact, "reference": f"#{i}"} for i in range(n)]
    return ctl(acct, "POST", "/seed", {"orders": orders})["orders"]


@pytest.fixture
def redis_prefix():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI ({REDIS_URL}): {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"test:bp:{uuid.uuid4().hex}:"
    yield prefix
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


# -- batching and paging --------------------------------------------------------------------------


def test_id_sets_split_beyond_200(sandbox_account):
    ids = seed_orders(sandbox_account, 450)
    client = make_client(sandbox_account)
    orders = client.get_orders(ids + [10_000_000])
    assert sorted(o["id"] for o in orders) == sorted(ids)
    gets = [
        r for r in api_requests(sandbox_account) if r["path"].startswith("/order-service/order/")
    ]
    assert len(gets) == 3 == client.request_count
    # Consecutive IDs went as ranges: short URLs.
    assert all(len(r["path"]) < 60 for r in gets), [r["path"] for r in gets]


def test_search_pages_across_pages(sandbox_account):
    ids = seed_orders(sandbox_account, 230)
    client = make_client(sandbox_account)
    rows = list(client.search_orders(orderTypeId=1, page_size=100))
    assert sorted(r["orderId"] for r in rows) == sorted(ids)
    searches = [
        r
        for r in api_requests(sandbox_account)
        if r["path"].startswith("/order-service/order-search")
    ]
    assert [r["query"]["firstResult"] for r in searches] == ["1", "101", "201"]


# -- throttling -----------------------------------------------------------------------------------


def test_tight_budget_503s_are_waited_out(sandbox_account):
    ctl(sandbox_account, "PUT", "/throttle", {"budget": 4, "windowSeconds": 1})
    client = make_client(sandbox_account, low_remaining=-1)  # no pacing: hit the wall on purpose
    started = time.monotonic()
    for _ in range(10):
        assert client.get_warehouses([2])[0]["id"] == 2
    assert client.throttled_count > 0
    assert client.request_count == 10 + client.throttled_count
    assert time.monotonic() - started >= 1.0
    statuses = [r["status"] for r in api_requests(sandbox_account)]
    assert statuses.count(503) == client.throttled_count


def test_low_remaining_paces_without_503(sandbox_account):
    ctl(sandbox_account, "PUT", "/throttle", {"budget": 4, "windowSeconds": 1})
    client = make_client(sandbox_account)
    for _ in range(10):
        client.get_channels([1])
    assert client.throttled_count == 0
    assert client.request_count == 10


def test_throttled_error_after_bounded_attempts(sandbox_account):
    ctl(sandbox_account, "PUT", "/throttle", {"budget": 1, "windowSeconds": 30})
    client = make_client(
        sandbox_account, low_remaining=-1, max_throttle_wait=0.05, max_throttle_retries=2
    )
    client.get_channels()
    with pytest.raises(ThrottledError) as info:
        client.get_channels()
    assert info.value.status == 503
    assert info.value.retry_after and info.value.retry_after > 1
    assert client.request_count == 4


def _shared_budget_worker(api_url_template, code, app_ref, token, prefix, n, out):
    store = RedisThrottleStore(REDIS_URL, prefix=prefix)
    client = BrightpearlClient(
        code,
        PrivateAppAuth(app_ref, token),
        base_url_template=api_url_template,
        throttle_store=store,
        throttle_key="shared",
        budget=5,
        window_seconds=1.0,
        low_remaining=-1,  # only the shared budget keeps us under the limit
        max_throttle_wait=2.0,
        timeout=5.0,
    )
    for _ in range(n):
        client.get_warehouses([2])
    out.put((client.request_count, client.throttled_count))


def test_two_processes_share_one_redis_budget(sandbox_account, redis_prefix):
    ctl(sandbox_account, "PUT", "/throttle", {"budget": 5, "windowSeconds": 1})
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    args = (
        sandbox_account.api_url_template,
        sandbox_account.code,
        sandbox_account.app_ref,
        sandbox_account.account_token,
        redis_prefix,
        8,
        out,
    )
    procs = [ctx.Process(target=_shared_budget_worker, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    assert results == [(8, 0), (8, 0)]
    statuses = [r["status"] for r in api_requests(sandbox_account)]
    assert statuses.count(200) == 16 and 503 not in statuses


# -- OAuth ----------------------------------------------------------------------------------------


def oauth_client(acct, seen, **kwargs):
    o = acct.oauth
    auth = OAuthAuth(
        acct.app_ref,
        o["devRef"],
        o["accessToken"],
        o["refreshToken"],
        client_id=o.get("clientId"),
        client_secret=o["clientSecret"],
        token_url=o["tokenUrl"],
    )
    return make_client(acct, auth=auth, on_token_refresh=seen.append, **kwargs), auth


def test_token_refresh_and_callback(sandbox_account):
    seen = []
    client, auth = oauth_client(sandbox_account, seen)
    assert client.get_warehouses([2])
    ctl(sandbox_account, "POST", "/oauth/expire")
    assert client.get_warehouses([2])
    assert len(seen) == 1
    server_side = ctl(sandbox_account, "GET", "/oauth")
    assert seen[0]["refresh_token"] != sandbox_account.oauth["refreshToken"]
    assert seen[0]["access_token"] == auth.access_token
    assert seen[0]["expires_at"] > time.time()
    assert server_side  # sandbox keeps the rotated tokens
    assert client.token_refresh_count == 1
    assert client.request_count == 4  # ok, expired, token POST, retry


def test_rotated_refresh_token_cannot_be_reused(sandbox_account):
    first, _ = oauth_client(sandbox_account, [])
    ctl(sandbox_account, "POST", "/oauth/expire")
    first.get_channels()
    stale, _ = oauth_client(sandbox_account, [])  # still holds the original tokens
    with pytest.raises(TokenRefreshError) as info:
        stale.get_channels()
    text = str(info.value) + info.value.body
    for secret in (sandbox_account.oauth["refreshToken"], sandbox_account.oauth["clientSecret"]):
        assert secret not in text


# -- timeouts, faults and the no-duplicate-write rules --------------------------------------------


def test_delay_longer_than_timeout(sandbox_account):
    ctl(
        sandbox_account,
        "POST",
        "/faults",
        {
            "method": "POST",
            "path": "^/integration-service/webhook",
            "kind": "delay",
            "seconds": 1.5,
        },
    )
    client = make_client(sandbox_account, timeout=(2.0, 0.3))
    payload = {
        "subscribeTo": "goods-in-note.created",
        "httpMethod": "GET",
        "uriTemplate": "http://127.0.0.1:9/x",
    }
    with pytest.raises(TransportError) as info:
        client.create_webhook(payload)
    assert info.value.timeout is True
    assert info.value.may_have_reached_server is True
    assert client.request_count == 1


def test_get_retried_after_delay_and_5xx(sandbox_account):
    ctl(
        sandbox_account,
        "POST",
        "/faults",
        {
            "method": "GET",
            "path": "^/product-service/channel",
            "kind": "delay",
            "seconds": 1.0,
            "times": 1,
        },
    )
    ctl(
        sandbox_account,
        "POST",
        "/faults",
        {
            "method": "GET",
            "path": "^/product-service/channel",
            "kind": "error",
            "status": 502,
            "times": 1,
        },
    )
    client = make_client(sandbox_account, timeout=(2.0, 0.3))
    assert client.get_channels([1])[0]["id"] == 1
    assert client.request_count == 3


def test_post_not_retried_on_5xx_fault(sandbox_account):
    ctl(
        sandbox_account,
        "POST",
        "/faults",
        {
            "method": "POST",
            "path": "^/integration-service/webhook",
            "kind": "error",
            "status": 500,
            "times": 1,
        },
    )
    client = make_client(sandbox_account)
    payload = {
        "subscribeTo": "goods-in-note.created",
        "httpMethod": "GET",
        "uriTemplate": "http://127.0.0.1:9/x",
    }
    with pytest.raises(ServerError):
        client.create_webhook(payload)
    posts = [r for r in api_requests(sandbox_account) if r["method"] == "POST"]
    assert len(posts) == 1
    assert client.list_webhooks() == []


def test_post_not_retried_on_drop_and_duplicate_guard(sandbox_account):
    seeded = ctl(sandbox_account, "POST", "/seed", {"contacts": [{"firstName": "D"}]})
    contact = seeded["contacts"][0]
    order_id = ctl(
        sandbox_account,
        "POST",
        "/seed",
        {"orders": [{"orderTypeCode": "SC", "contactId": contact}]},
    )["orders"][0]
    ctl(
        sandbox_account,
        "POST",
        "/faults",
        {
            "method": "POST",
            "path": "^/accounting-service/customer-payment",
            "kind": "drop",
            "times": 1,
        },
    )
    client = make_client(sandbox_account)
    payment = {
        "transactionRef": "refund-drop-1",
        "paymentMethodCode": "CARD",
        "paymentType": "PAYMENT",
        "orderId": order_id,
        "currencyIsoCode": "GBP",
        "amountPaid": "4.00",
        "paymentDate": "2026-01-12T10:00:00+00:00",
    }
    with pytest.raises(TransportError) as info:
        client.create_customer_payment(payment)
    assert info.value.may_have_reached_server is True
    assert client.request_count == 1
    # The write happened; the caller searches by its key instead of posting again…
    rows = list(client.search_customer_payments(orderId=order_id))
    assert [r["transactionRef"] for r in rows] == ["refund-drop-1"]
    # …and if it posts anyway, Brightpearl's uniqueness check refuses the duplicate.
    with pytest.raises(ValidationError):
        client.create_customer_payment(payment)
    assert len(ctl(sandbox_account, "GET", "/state")["customerPayments"]) == 1
