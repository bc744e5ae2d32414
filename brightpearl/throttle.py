"""Staying inside Brightpearl's request budget (200 requests per rolling minute per account).

The budget belongs to the *account*, not to a process: every Celery worker and web process that
talks to the same account spends from one pool, and a 503 means "nobody may call until the
period ends". So the state lives in a pluggable store keyed per account:

* :class:`MemoryThrottleStore` — one process (tests, scripts, the default);
* :class:`RedisThrottleStore` — shared by all processes; each operation is one Lua script, so
  check-and-take is atomic across workers.

A store keeps, per key, a rolling log of request slots (client-side estimate of the budget,
same rolling-window shape as Brightpearl's), a shared "pause until" deadline, set after a 503 or
when the server says few requests remain, and one for the bulk lane only. :class:`Throttle`
is the per-client policy on top (how long to wait, caps, pacing).

Lanes (issue #11, "fair budget"): a caller is either *interactive* (webhook-driven work, staff
actions: someone waits for it) or *bulk* (syncs, backlogs, backfills). Interactive callers may
fill the whole window. Bulk callers may fill it only up to ``budget - reserve``, and once the
window holds ``burst`` slots they are spread: what is left of their share is spaced evenly over
the time until the window's oldest slot frees (:func:`spread_wait`). Together these give the
interactive lane strict priority, at a cost of ``reserve / budget`` of the budget while only
bulk work is pending:

* the top ``reserve`` slots of the window are the interactive lane's alone, so a webhook's
  first requests go at once even while a backlog drains;
* when interactive work needs more than the reserve, every slot that frees is in that top band
  (the window is full), so bulk cannot take it: the interactive caller gets it;
* because a backlog's slots are spread over the window, they also free spread out (every
  ~0.3–0.7 s at 200/min), not all at once a minute after a burst: an interactive caller waits
  a fraction of a second for the next one, not until the window turns over.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import redis

logger = logging.getLogger("brightpearl.throttle")

REMAINING_HEADER = "brightpearl-requests-remaining"
PERIOD_HEADER = "brightpearl-next-throttle-period"


class BudgetSpent(Exception):  # noqa: N818 - a condition, not a failure of the API
    """The account's request budget is spent for longer than the caller is willing to block
    (``Throttle(max_block_seconds=...)``). Raised *before* sending: nothing reached Brightpearl.

    Deliberately not a :class:`~brightpearl.errors.BrightpearlError`: per-item error handling
    must not swallow it. The caller stops and comes back after ``retry_after`` seconds (a Celery
    task re-queues itself with that countdown, freeing its worker slot, see issue #12).
    """

    def __init__(self, key: str, retry_after: float) -> None:
        super().__init__(f"request budget of {key} spent; next request in {retry_after:.1f}s")
        self.key = key
        self.retry_after = retry_after


# A caller's turn (`one_turn`): when it ends (time.monotonic()) and its length; and how many
# `finishing()` blocks the current context is in. Context variables, not client state: the
# turn is the caller's (a Celery task's), whatever clients it builds.
_turn: ContextVar[tuple[float, float] | None] = ContextVar("brightpearl_turn", default=None)
_finishing: ContextVar[int] = ContextVar("brightpearl_finishing", default=0)


class TurnOver(BudgetSpent):
    """The caller's turn (:func:`one_turn`) is over: raised *before* a request or before a unit
    of work begins, exactly like :class:`BudgetSpent` (nothing of it reached Brightpearl), so
    everything that stops cleanly on a spent budget stops cleanly here. The budget may well be
    there: the caller chose to hand the rest of its work on (a sync on a queue kept for quick
    work, issue #12), so ``retry_after`` is 0."""

    def __init__(self, seconds: float) -> None:
        Exception.__init__(self, f"its {seconds:g} s turn is over")
        self.key = ""
        self.retry_after = 0.0
        self.seconds = seconds


@contextmanager
def one_turn(seconds: float | None) -> Iterator[None]:
    """Within this block, no Brightpearl request and no unit of work (:func:`finishing` with
    ``begins=True``) starts after ``seconds`` from now: :class:`TurnOver` is raised instead.
    None, 0 or less: no limit."""
    token = _turn.set((time.monotonic() + seconds, seconds) if seconds and seconds > 0 else None)
    try:
        yield
    finally:
        _turn.reset(token)


def check_turn() -> None:
    """Raise :class:`TurnOver` if the caller's turn is over, unless a unit of work that began
    is being finished."""
    turn = _turn.get()
    if turn is not None and not _finishing.get() and time.monotonic() >= turn[0]:
        raise TurnOver(turn[1])


@contextmanager
def finishing(*, begins: bool = False) -> Iterator[None]:
    """A unit of work (a claimed write, the search after its lost answer, the note that goes
    with it) runs to its end: within this block the caller's turn does not end, and it ends
    between units. ``begins``: this block starts a new unit, which does not start once the
    turn is over. A spent budget still stops a unit."""
    if begins:
        check_turn()
    token = _finishing.set(_finishing.get() + 1)
    try:
        yield
    finally:
        _finishing.reset(token)


INTERACTIVE = "interactive"  # someone waits: webhook-driven work, staff actions
BULK = "bulk"  # syncs, backlogs, backfills
LANES = (INTERACTIVE, BULK)
DEFAULT_BULK_BURST = 100  # half of the documented 200: a small sync is never slowed


@dataclass(frozen=True)
class Lane:
    """Whose share of the budget a client spends (see the module docstring)."""

    kind: str = INTERACTIVE  # or BULK
    reserve: int = 0  # bulk: slots at the top of the window left to the interactive lane
    burst: int = DEFAULT_BULK_BURST  # bulk: slots of the window taken at once, then spread

    def __post_init__(self) -> None:
        if self.kind not in LANES:
            raise ValueError(f"unknown throttle lane {self.kind!r}; one of {LANES}")


class ThrottleStore(Protocol):
    """Shared budget state. Times are integer milliseconds.

    ``lane``: the caller's lane (a bulk caller also obeys the bulk-only pause).
    ``reserve``: slots at the top of the window this caller may not take (0: the whole budget).
    A bulk caller's slots are also spread once the window holds ``burst`` (:func:`spread_wait`)."""

    def acquire(
        self,
        key: str,
        budget: int,
        window_ms: int,
        *,
        lane: str = INTERACTIVE,
        reserve: int = 0,
        burst: int = DEFAULT_BULK_BURST,
    ) -> int:
        """Take one request slot. Return 0 if taken, else ms to wait before asking again."""
        ...

    def pause(self, key: str, ms: int, *, bulk_only: bool = False) -> None:
        """Make every ``acquire`` on ``key`` (with ``bulk_only``: of the bulk lane) wait at
        least ``ms`` from now (never shortens)."""
        ...


def band_wait(slots: Sequence[float], now: float, limit: int, window_ms: int) -> int:
    """Ms until a caller allowed ``limit`` slots of the window may take one (0: now).

    ``slots`` are the window's slot times, oldest first. With ``n`` slots and ``n >= limit``,
    the ``(n - limit + 1)``-th oldest must expire first. The Lua script does the same."""
    limit = max(limit, 1)
    used = len(slots)
    if used < limit:
        return 0
    return max(1, int(slots[used - limit] + window_ms - now + 0.999))


def spread_wait(slots: Sequence[float], now: float, limit: int, window_ms: int, burst: int) -> int:
    """Ms a bulk caller waits so that its share is spread over the window (0: go now).

    Below ``burst`` slots in the window: no wait (a small sync is never slowed). Above, slots
    are spaced, counted from the newest, by the larger of ``window / limit`` (the steady pace
    that fills the share in one window) and the time until the oldest slot frees divided by
    the slots left (after a burst: what is left of the first minute spread over all of it)."""
    used = len(slots)
    if used < burst or used >= limit:
        return 0
    horizon = max(slots[0] + window_ms - now, 0.0)
    spacing = max(window_ms / limit, horizon / (limit - used))
    return max(0, int(slots[-1] + spacing - now + 0.999))


class MemoryThrottleStore:
    """In-process store (thread-safe). Each process has its own budget estimate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[str, deque[float]] = {}
        self._paused_until: dict[str, float] = {}

    def _now_ms(self) -> float:
        return self._clock() * 1000.0

    def acquire(
        self,
        key: str,
        budget: int,
        window_ms: int,
        *,
        lane: str = INTERACTIVE,
        reserve: int = 0,
        burst: int = DEFAULT_BULK_BURST,
    ) -> int:
        with self._lock:
            now = self._now_ms()
            until = self._paused_until.get(key, 0.0)
            if lane == BULK:
                until = max(until, self._paused_until.get(f"{key}:bulk", 0.0))
            if until > now:
                return max(1, int(until - now + 0.999))
            slots = self._slots.setdefault(key, deque())
            while slots and slots[0] <= now - window_ms:
                slots.popleft()
            wait = band_wait(slots, now, budget - reserve, window_ms)
            if not wait and lane == BULK:
                wait = spread_wait(slots, now, budget - reserve, window_ms, burst)
            if wait:
                return wait
            slots.append(now)
            return 0

    def pause(self, key: str, ms: int, *, bulk_only: bool = False) -> None:
        if ms <= 0:
            return
        key = f"{key}:bulk" if bulk_only else key
        with self._lock:
            until = self._now_ms() + ms
            if until > self._paused_until.get(key, 0.0):
                self._paused_until[key] = until

    def reset(self, key: str | None = None) -> None:
        """Forget state (tests)."""
        with self._lock:
            if key is None:
                self._slots.clear()
                self._paused_until.clear()
            else:
                self._slots.pop(key, None)
                self._paused_until.pop(key, None)
                self._paused_until.pop(f"{key}:bulk", None)


# KEYS[1] = slot log (sorted set, score = ms), KEYS[2] = pause marker (string with PX ttl),
# KEYS[3] = the bulk lane's pause marker. ARGV = budget, window ms, member, reserve, burst,
# "1" for the bulk lane. The same decisions as band_wait and spread_wait.
# Uses the Redis server clock so that all workers agree on "now".
_ACQUIRE_LUA = """
local bulk = ARGV[6] == '1'
local pttl = redis.call('PTTL', KEYS[2])
if bulk then
  local bulk_pttl = redis.call('PTTL', KEYS[3])
  if bulk_pttl > pttl then pttl = bulk_pttl end
end
if pttl > 0 then return pttl end
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[1]) - tonumber(ARGV[4])
if limit < 1 then limit = 1 end
local burst = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used >= limit then
  local nth = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
  local wait = math.ceil(tonumber(nth[2]) + window - now)
  if wait < 1 then wait = 1 end
  return wait
end
if bulk and used >= burst then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  local horizon = tonumber(oldest[2]) + window - now
  if horizon < 0 then horizon = 0 end
  local spacing = math.max(window / limit, horizon / (limit - used))
  local wait = math.ceil(tonumber(newest[2]) + spacing - now)
  if wait > 0 then return wait end
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""

_PAUSE_LUA = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 1
"""


class RedisThrottleStore:
    """Budget shared through Redis by every process using the same account.

    ``redis_client_or_url`` is a ``redis.Redis`` or a URL (``redis://host:6379/0``). Keys are
    ``{prefix}{key}:slots``, ``{prefix}{key}:pause`` and ``{prefix}{key}:bulk-pause`` (the
    bulk lane's); all expire on their own.
    """

    def __init__(
        self,
        redis_client_or_url: Any,
        *,
        prefix: str = "brightpearl:throttle:",
        fail_open: bool = True,
    ) -> None:
        self.fail_open = fail_open
        if isinstance(redis_client_or_url, str):
            self._redis = redis.Redis.from_url(redis_client_or_url)
        else:
            self._redis = redis_client_or_url
        self.prefix = prefix
        self._acquire = self._redis.register_script(_ACQUIRE_LUA)
        self._pause = self._redis.register_script(_PAUSE_LUA)

    def __repr__(self) -> str:
        return f"RedisThrottleStore(prefix={self.prefix!r})"

    def _unavailable(self, exc: Exception) -> None:
        """Redis down: by default carry on without the shared budget (Brightpearl's 503s are
        still obeyed) rather than stop every sync; ``fail_open=False`` re-raises."""
        if not self.fail_open:
            raise exc
        logger.warning("throttle store unavailable, continuing without it: %s", exc)

    def acquire(
        self,
        key: str,
        budget: int,
        window_ms: int,
        *,
        lane: str = INTERACTIVE,
        reserve: int = 0,
        burst: int = DEFAULT_BULK_BURST,
    ) -> int:
        member = uuid.uuid4().hex
        base = f"{self.prefix}{key}"
        bulk = "1" if lane == BULK else "0"
        try:
            result = self._acquire(
                keys=[f"{base}:slots", f"{base}:pause", f"{base}:bulk-pause"],
                args=[int(budget), int(window_ms), member, int(reserve), int(burst), bulk],
            )
        except redis.RedisError as exc:
            self._unavailable(exc)
            return 0
        return int(result)

    def pause(self, key: str, ms: int, *, bulk_only: bool = False) -> None:
        if ms <= 0:
            return
        marker = "bulk-pause" if bulk_only else "pause"
        try:
            self._pause(keys=[f"{self.prefix}{key}:{marker}"], args=[int(ms)])
        except redis.RedisError as exc:
            self._unavailable(exc)

    def reset(self, key: str) -> None:
        """Forget state for ``key`` (tests)."""
        base = f"{self.prefix}{key}"
        self._redis.delete(f"{base}:slots", f"{base}:pause", f"{base}:bulk-pause")


def parse_int_header(headers: Mapping[str, str], name: str) -> int | None:
    """Read an integer header tolerantly (missing, blank or junk → ``None``; floats truncated)."""
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = int(float(str(raw).strip()))
    except ValueError:
        return None
    return max(value, 0)


def lane_arguments(lane: Lane, budget: int, window_ms: int) -> dict[str, Any]:
    """What a lane asks of the store: the interactive lane the whole window, unpaced; the bulk
    lane all but ``reserve`` slots (at least one left to it), spread over the window."""
    if lane.kind != BULK:
        return {}
    reserve = min(max(int(lane.reserve), 0), budget - 1)
    return {
        "lane": BULK,
        "reserve": reserve,
        "burst": max(int(lane.burst), 1),
    }


class Throttle:
    """Per-client policy over a shared store.

    * before each request: take a slot (wait while the store says so, each wait capped);
    * after each response: if ``brightpearl-requests-remaining`` is at or below
      ``low_remaining``, pace the rest of the period (``period / (remaining + 1)``) for every
      process sharing the store (with a lane reserve: the bulk lane only, see ``observe``);
    * after a 503: pause everyone for ``brightpearl-next-throttle-period`` ms (+ jitter, capped).

    ``max_wait`` caps any single sleep so tests with tiny caps stay fast; the waiting loop
    itself is bounded by ``max_acquire_seconds``. With ``max_block_seconds`` set, a wait longer
    than that is not slept at all: :class:`BudgetSpent` is raised with the time to come back
    (a worker slot is never spent sleeping for budget). Within the caller's turn
    (:func:`one_turn`), no request starts after it outside a :func:`finishing` block:
    :class:`TurnOver` is raised.

    ``lane``: :class:`Lane` — interactive by default (the whole budget, unpaced); a bulk lane
    takes at most ``budget - reserve`` slots of the window, spread over it once it holds
    ``burst``; see the module docstring.
    """

    def __init__(
        self,
        store: ThrottleStore,
        key: str,
        *,
        budget: int = 200,
        window_seconds: float = 60.0,
        safety_margin_ms: int = 250,
        low_remaining: int = 10,
        max_wait: float = 60.0,
        jitter: float = 0.25,
        max_acquire_seconds: float = 300.0,
        max_block_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        lane: Lane = Lane(),
    ) -> None:
        self.store = store
        self.key = key
        self.budget = budget
        # Our clock starts before the server's; a margin keeps our window at least as long.
        self.window_ms = int(window_seconds * 1000) + safety_margin_ms
        self.low_remaining = low_remaining
        self.max_wait = max_wait
        self.jitter = jitter
        self.max_acquire_seconds = max_acquire_seconds
        self.max_block_seconds = max_block_seconds
        self._sleep = sleep
        self.waited_seconds = 0.0
        self.lane = lane
        self._lane_args = lane_arguments(lane, budget, self.window_ms)
        self._reserve = min(max(int(lane.reserve), 0), max(budget - 1, 0))

    def _nap(self, seconds: float) -> None:
        seconds = max(0.0, min(seconds, self.max_wait))
        if seconds:
            self.waited_seconds += seconds
            self._sleep(seconds)

    def before_request(self) -> None:
        """Block until the shared budget allows one more request (or raise BudgetSpent, or
        TurnOver once the caller's turn is over)."""
        check_turn()
        deadline = time.monotonic() + self.max_acquire_seconds
        while True:
            wait_ms = self.store.acquire(self.key, self.budget, self.window_ms, **self._lane_args)
            if wait_ms <= 0:
                return
            if self.max_block_seconds is not None and wait_ms / 1000.0 > self.max_block_seconds:
                raise BudgetSpent(self.key, wait_ms / 1000.0)
            if time.monotonic() >= deadline:
                # Give up waiting for our own estimate; the server remains the judge (503).
                logger.warning(
                    "throttle wait exceeded %.0fs; sending anyway", self.max_acquire_seconds
                )
                return
            self._nap(wait_ms / 1000.0)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Slow down proactively when the server says the budget is nearly spent.

        Without a reserve, every caller paces the rest of the period once ``remaining`` is at
        or below ``low_remaining``. With one, that pacing is the bulk lane's (it counts only
        what is left above the reserve, and stops when nothing is); the interactive lane may
        spend the reserve down to 0, where everyone waits for the next period."""
        remaining = parse_int_header(headers, REMAINING_HEADER)
        period_ms = parse_int_header(headers, PERIOD_HEADER)
        if remaining is None or period_ms is None:
            return
        spare = remaining - self._reserve  # what the bulk lane may still use of the period
        if spare > self.low_remaining:
            return
        bulk_only = remaining > 0 and self._reserve > 0
        pace_ms = period_ms if spare <= 0 else period_ms // (spare + 1)
        pace_ms = min(pace_ms, int(self.max_wait * 1000))
        if pace_ms > 0:
            logger.debug(
                "budget low (remaining=%s); pacing %s %sms",
                remaining,
                "bulk work" if bulk_only else "everyone",
                pace_ms,
            )
            self.store.pause(self.key, pace_ms, bulk_only=bulk_only)

    def throttled_wait(self, headers: Mapping[str, str], attempt: int) -> float:
        """Seconds to wait after a 503, shared with every process via the store."""
        period_ms = parse_int_header(headers, PERIOD_HEADER)
        if period_ms is None:
            base = min(2.0**attempt, 60.0)
        else:
            base = period_ms / 1000.0
        wait = min(base + random.uniform(0, self.jitter), self.max_wait)
        self.store.pause(self.key, int(wait * 1000))
        return wait

    def sleep(self, seconds: float) -> None:
        """Sleep (capped by ``max_wait``) and account for it."""
        self._nap(seconds)
