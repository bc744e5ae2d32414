"""Issue #11, fair budget: the bulk lane (syncs, backlogs) leaves the top of the window to the
interactive lane (webhooks, staff), and is paced so that its slots free evenly. The same
decisions from the in-memory store (a fake clock) and from the Redis script (real Redis)."""

from __future__ import annotations

import uuid

import pytest

from brightpearl.throttle import (
    BULK,
    INTERACTIVE,
    BudgetSpent,
    Lane,
    MemoryThrottleStore,
    RedisThrottleStore,
    Throttle,
    band_wait,
    lane_arguments,
    spread_wait,
)

WINDOW = 60_000


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def bulk(budget=200, reserve=6, burst=100):
    return lane_arguments(Lane(BULK, reserve, burst), budget, WINDOW)


def take_all(store, key, budget, **lane):
    """Take slots until the store refuses; how many were taken, and the wait it answered."""
    taken = 0
    while (wait := store.acquire(key, budget, WINDOW, **lane)) == 0:
        taken += 1
        assert taken <= budget
    return taken, wait


# -- the pure pieces -------------------------------------------------------------------------------


def test_band_wait_is_the_expiry_of_the_slot_that_frees_the_band():
    slots = [0.0, 100.0, 200.0, 300.0]
    assert band_wait(slots, 400.0, 5, 1000) == 0
    assert band_wait(slots, 400.0, 4, 1000) == 600  # the oldest expires at 1000
    assert band_wait(slots, 400.0, 2, 1000) == 800  # two must expire: the second at 1100
    assert band_wait(slots, 400.0, 0, 1000) == band_wait(slots, 400.0, 1, 1000)


def test_spread_wait_spaces_what_is_left_until_the_oldest_slot_frees():
    slots = [0.0, 100.0, 400.0]
    assert spread_wait(slots, 400.0, 10, 2000, burst=5) == 0  # under the burst
    # 7 left of 10; the oldest frees at 2000: one every 1600 / 7 ms after the newest (400) …
    assert spread_wait(slots, 400.0, 10, 2000, burst=2) == 229
    assert spread_wait(slots, 629.0, 10, 2000, burst=2) == 0  # … due 229 ms later
    assert spread_wait(slots, 400.0, 3, 2000, burst=2) == 0  # a full share is band_wait's
    # Never faster than the share in one window (2000 / 10) when the oldest frees soon.
    assert spread_wait([0.0, 1900.0, 1950.0], 1950.0, 10, 2000, burst=2) == 200


def test_lane_arguments():
    assert lane_arguments(Lane(INTERACTIVE, 6, 100), 200, WINDOW) == {}
    assert bulk() == {"lane": BULK, "reserve": 6, "burst": 100}
    # A reserve as large as the budget still leaves bulk work one slot, never none.
    assert lane_arguments(Lane(BULK, 50, 1), 5, WINDOW)["reserve"] == 4


def test_unknown_lane_is_refused():
    with pytest.raises(ValueError):
        Lane("urgent")


# -- the in-memory store, fake clock ---------------------------------------------------------------


def test_bulk_stops_short_of_the_reserve_and_interactive_gets_it():
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    taken, wait = take_all(store, "k", 20, **bulk(budget=20, reserve=5, burst=100))
    assert taken == 15 and 0 < wait <= WINDOW
    interactive, _ = take_all(store, "k", 20)
    assert interactive == 5


def test_a_backlog_is_spread_after_its_burst():
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    lane = bulk(budget=200, reserve=6, burst=10)
    taken, wait = take_all(store, "k", 200, **lane)
    assert taken == 10
    assert wait == pytest.approx(WINDOW / 184, abs=2)  # 184 left over the minute, not its end
    clock.now += wait / 1000
    assert store.acquire("k", 200, WINDOW, **lane) == 0


def run_both_lanes(store, clock, lane, seconds, every):
    """A backlog asking as fast as allowed (20 ms per request) for `seconds`, sleeping what
    the store says, and an interactive caller wanting one request every `every` seconds.
    Returns (bulk requests, interactive requests, longest interactive wait in seconds)."""
    start, next_bulk, next_interactive = clock.now, clock.now, clock.now + 0.5
    sent = {"bulk": 0, "interactive": 0}
    longest, waiting_since = 0.0, None
    while clock.now - start < seconds:
        clock.now = min(next_bulk, next_interactive)
        if clock.now == next_interactive:
            wait = store.acquire("k", 200, WINDOW)
            if wait:
                waiting_since = clock.now if waiting_since is None else waiting_since
                next_interactive = clock.now + wait / 1000
                continue
            sent["interactive"] += 1
            longest = max(longest, clock.now - (waiting_since or clock.now))
            waiting_since, next_interactive = None, clock.now + every
        else:
            wait = store.acquire("k", 200, WINDOW, **lane)
            sent["bulk"] += wait == 0
            next_bulk = clock.now + (wait / 1000 if wait else 0.02)
    return sent["bulk"], sent["interactive"], longest


@pytest.mark.parametrize("every", [1.0, 3.0])
def test_interactive_work_never_waits_behind_a_backlog(every):
    """Whenever it comes during a backlog's first minutes (its burst, the spread, a full
    window), an interactive request goes at once: the backlog leaves it room."""
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    bulk_sent, interactive_sent, longest = run_both_lanes(store, clock, bulk(), 300, every)
    assert longest < 1.0
    assert interactive_sent >= 300 / every - 1
    assert (bulk_sent + interactive_sent) / (200 * 5) >= 0.95


def test_a_full_window_frees_slots_for_interactive_work_within_a_pace():
    """A backlog paced over a whole window: when staff ask for more than the reserve, the
    next slot to free is theirs within one pace, not at the window's end."""
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    lane = bulk(budget=200, reserve=6, burst=10)
    bulk_sent = 0
    for _ in range(4000):  # a little over a window of a backlog asking as fast as allowed
        wait = store.acquire("k", 200, WINDOW, **lane)
        if wait == 0:
            bulk_sent += 1
        else:
            clock.now += wait / 1000
    assert bulk_sent >= 194
    assert take_all(store, "k", 200)[0] >= 6  # the reserve was left, and it is interactive's
    wait = store.acquire("k", 200, WINDOW)
    assert 0 < wait <= 2 * WINDOW / 194
    # The bulk lane cannot take that slot from the waiting interactive caller.
    clock.now += (wait + 1) / 1000
    assert store.acquire("k", 200, WINDOW, **lane) > 0
    assert store.acquire("k", 200, WINDOW) == 0


def test_bulk_alone_keeps_the_budget_busy():
    """Five minutes of a backlog with no interactive work: the share of the budget used is
    (budget − reserve) / budget (97 %), less rounding."""
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    bulk_sent, _, _ = run_both_lanes(store, clock, bulk(), 300, every=10_000)
    assert bulk_sent / (200 * 5) >= 0.96


def test_the_pause_holds_both_lanes():
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    store.pause("k", 700)
    assert store.acquire("k", 200, WINDOW, **bulk()) == 700
    assert store.acquire("k", 200, WINDOW) == 700


def low(remaining, period_ms=9000):
    return {
        "brightpearl-requests-remaining": str(remaining),
        "brightpearl-next-throttle-period": str(period_ms),
    }


def test_with_a_reserve_a_low_remaining_paces_bulk_work_only():
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    throttle = Throttle(store, "k", low_remaining=10, lane=Lane(BULK, reserve=6))
    throttle.observe(low(17))  # 11 above the reserve: no pacing yet
    assert store.acquire("k", 200, WINDOW, **bulk()) == 0
    throttle.observe(low(8))  # 2 left above the reserve: spread over the period
    assert store.acquire("k", 200, WINDOW, **bulk()) == 3000
    assert store.acquire("k", 200, WINDOW) == 0  # interactive work is not paced
    throttle.observe(low(5))  # into the reserve: bulk waits for the next period
    assert store.acquire("k", 200, WINDOW, **bulk()) == 9000
    throttle.observe(low(0))  # nothing left: everyone waits
    assert store.acquire("k", 200, WINDOW) == 9000


def test_the_pause_of_a_bulk_lane_is_shared_through_redis(lanes_store):
    lanes_store.pause("acct", 5_000, bulk_only=True)
    assert 4_000 < lanes_store.acquire("acct", 200, WINDOW, **bulk()) <= 5_000
    assert lanes_store.acquire("acct", 200, WINDOW) == 0


def test_throttle_sends_its_lane_to_the_store():
    clock = FakeClock()
    store = MemoryThrottleStore(clock=clock)
    naps = []
    throttle = Throttle(
        store,
        "k",
        budget=4,
        window_seconds=60,
        safety_margin_ms=0,
        lane=Lane(BULK, reserve=2, burst=10),
        max_block_seconds=1.0,
        sleep=naps.append,
    )
    throttle.before_request()
    throttle.before_request()
    with pytest.raises(BudgetSpent):
        throttle.before_request()  # the two left are the interactive lane's
    staff = Throttle(store, "k", budget=4, window_seconds=60, safety_margin_ms=0)
    staff.before_request()
    staff.before_request()
    assert naps == []


# -- Redis: the same decisions from the script --------------------------------------------------


@pytest.fixture
def lanes_store(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    prefix = f"test:lanes:{uuid.uuid4().hex}:"
    yield RedisThrottleStore(client, prefix=prefix, fail_open=False)
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


def test_redis_bulk_leaves_the_reserve_to_interactive(lanes_store):
    taken, wait = take_all(lanes_store, "acct", 20, **bulk(budget=20, reserve=5, burst=100))
    assert taken == 15 and WINDOW - 5_000 < wait <= WINDOW
    interactive, wait = take_all(lanes_store, "acct", 20)
    assert interactive == 5 and 0 < wait <= WINDOW
    assert lanes_store.acquire("other", 20, WINDOW, **bulk(budget=20, reserve=5)) == 0


def test_redis_bulk_is_spread_after_its_burst(lanes_store):
    lane = bulk(budget=200, reserve=6, burst=3)
    taken, wait = take_all(lanes_store, "acct", 200, **lane)
    assert taken == 3
    assert 0 < wait <= WINDOW / 191 + 2  # one spacing (~314 ms), not the window
    assert lanes_store.acquire("acct", 200, WINDOW) == 0  # interactive is not spread


def test_redis_pause_holds_both_lanes(lanes_store):
    lanes_store.pause("acct", 5_000)
    assert 4_000 < lanes_store.acquire("acct", 200, WINDOW, **bulk()) <= 5_000
    assert 4_000 < lanes_store.acquire("acct", 200, WINDOW) <= 5_000
    lanes_store.reset("acct")
    assert lanes_store.acquire("acct", 200, WINDOW, **bulk()) == 0


def test_no_request_starts_after_the_callers_turn_and_the_refused_one_takes_no_slot():
    """A caller with a turn (a sync on the inbound queue) stops before a request, as on a spent
    budget: TurnOver is a BudgetSpent with nothing to wait for, and it takes no slot. Inside a
    unit of work already begun the turn does not end; a new unit does not begin."""
    import time

    from brightpearl.throttle import TurnOver, finishing, one_turn

    store = MemoryThrottleStore()
    throttle = Throttle(store, "acct", budget=5)
    with one_turn(0.2):
        throttle.before_request()  # within the turn
        time.sleep(0.25)
        with pytest.raises(TurnOver) as raised:
            throttle.before_request()
        with finishing():  # the note of a payment made within the turn
            throttle.before_request()
        with pytest.raises(TurnOver), finishing(begins=True):
            throttle.before_request()  # never reached: the unit does not begin
    throttle.before_request()  # no turn outside the block
    assert isinstance(raised.value, BudgetSpent) and raised.value.retry_after == 0
    assert "0.2 s turn is over" in str(raised.value)
    # Three slots taken (before, in the unit begun, after): the refused requests took none.
    taken, _wait = take_all(store, "acct", 5)
    assert taken == 2
