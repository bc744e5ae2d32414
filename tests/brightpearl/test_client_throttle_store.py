"""Throttle stores and policy: rolling budget, shared pauses, pacing, Redis across processes."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid

import pytest

from brightpearl.throttle import (
    MemoryThrottleStore,
    RedisThrottleStore,
    Throttle,
    parse_int_header,
)

REDIS_URL = "redis://127.0.0.1:6379/15"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_memory_store_rolling_window():
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    assert [store.acquire("k", 3, 1000) for _ in range(3)] == [0, 0, 0]
    assert store.acquire("k", 3, 1000) == 1000
    clock.now += 0.4
    assert store.acquire("k", 3, 1000) == 600
    clock.now += 0.6
    assert store.acquire("k", 3, 1000) == 0
    assert store.acquire("other", 3, 1000) == 0  # keys are independent


def test_memory_store_pause_never_shortens():
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    store.pause("k", 500)
    store.pause("k", 100)
    assert store.acquire("k", 10, 1000) == 500
    clock.now += 0.5
    assert store.acquire("k", 10, 1000) == 0


def test_parse_int_header_is_tolerant():
    assert parse_int_header({"h": "10014"}, "h") == 10014
    assert parse_int_header({"h": "12.7"}, "h") == 12
    assert parse_int_header({"h": "soon"}, "h") is None
    assert parse_int_header({}, "h") is None
    assert parse_int_header({"h": "-5"}, "h") == 0


def test_throttle_paces_when_remaining_is_low():
    store = MemoryThrottleStore()
    throttle = Throttle(store, "k", low_remaining=10, max_wait=60)
    throttle.observe(
        {"brightpearl-requests-remaining": "50", "brightpearl-next-throttle-period": "9000"}
    )
    assert store.acquire("k", 100, 60_000) == 0
    throttle.observe(
        {"brightpearl-requests-remaining": "2", "brightpearl-next-throttle-period": "9000"}
    )
    wait = store.acquire("k", 100, 60_000)
    assert 2500 < wait <= 3000  # 9000 / (2 + 1)


def test_throttle_waits_and_caps_sleeps():
    slept = []
    store = MemoryThrottleStore()
    throttle = Throttle(store, "k", max_wait=0.05, sleep=slept.append, jitter=0)
    wait = throttle.throttled_wait({"brightpearl-next-throttle-period": "40000"}, 1)
    assert wait == pytest.approx(0.05)
    throttle.before_request()
    assert slept and all(s <= 0.05 for s in slept)


def test_throttle_budget_blocks_until_window_passes():
    throttle = Throttle(
        MemoryThrottleStore(), "k", budget=2, window_seconds=0.3, safety_margin_ms=0
    )
    started = time.monotonic()
    for _ in range(5):
        throttle.before_request()
    assert time.monotonic() - started >= 0.55  # 5 slots at 2 per 0.3 s need two waits


# -- Redis ----------------------------------------------------------------------------------------


@pytest.fixture
def redis_store():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI ({REDIS_URL}): {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"test:bp:{uuid.uuid4().hex}:"
    yield RedisThrottleStore(client, prefix=prefix)
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


def test_redis_store_budget_and_pause(redis_store):
    assert [redis_store.acquire("acct", 2, 1000) for _ in range(2)] == [0, 0]
    wait = redis_store.acquire("acct", 2, 1000)
    assert 0 < wait <= 1000
    redis_store.pause("other", 300)
    redis_store.pause("other", 10)
    assert 200 < redis_store.acquire("other", 5, 1000) <= 300
    redis_store.reset("other")
    assert redis_store.acquire("other", 5, 1000) == 0


def test_redis_store_from_url():
    store = RedisThrottleStore(REDIS_URL, prefix=f"test:bp:{uuid.uuid4().hex}:")
    try:
        store._redis.ping()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    assert store.acquire("a", 1, 500) == 0
    store.reset("a")


def test_redis_store_fails_open_when_redis_is_down():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    url = f"redis://127.0.0.1:{port}/0"
    store = RedisThrottleStore(url)
    assert store.acquire("k", 1, 1000) == 0
    store.pause("k", 100)
    strict = RedisThrottleStore(url, fail_open=False)
    with pytest.raises(Exception, match="(?i)connect"):
        strict.acquire("k", 1, 1000)


def _take_slots(prefix: str, n: int, budget: int, window_s: float, out) -> None:
    store = RedisThrottleStore(REDIS_URL, prefix=prefix)
    throttle = Throttle(
        store, "shared-acct", budget=budget, window_seconds=window_s, safety_margin_ms=0
    )
    stamps = []
    for _ in range(n):
        throttle.before_request()
        stamps.append(time.time())
    out.put(stamps)


def test_two_processes_share_one_redis_budget(redis_store):
    budget, window = 5, 0.5
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_take_slots, args=(redis_store.prefix, 8, budget, window, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    stamps = sorted(out.get(timeout=60) + out.get(timeout=60))
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    assert len(stamps) == 16
    # In any rolling window, the two processes together stayed within the budget.
    for i, start in enumerate(stamps):
        in_window = [t for t in stamps[i:] if t < start + window - 0.02]
        assert len(in_window) <= budget, (len(in_window), stamps)
    assert stamps[-1] - stamps[0] >= window * 2.5  # 16 slots at 5 per window need >3 windows
