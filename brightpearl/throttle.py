"""Staying inside Brightpearl's request budget (200 requests per rolling minute per account).

The budget belongs to the *account*, not to a process: every Celery worker and web process that
talks to the same account spends from one pool, and a 503 means "nobody may call until the
period ends". So the state lives in a pluggable store keyed per account:

* :class:`MemoryThrottleStore` — one process (tests, scripts, the default);
* :class:`RedisThrottleStore` — shared by all processes; each operation is one Lua script, so
  check-and-take is atomic across workers.

A store keeps two things per key: a rolling log of request slots (client-side estimate of the
budget, same rolling-window shape as Brightpearl's) and a shared "pause until" deadline, set
after a 503 or when the server says few requests remain. :class:`Throttle` is the per-client
policy on top (how long to wait, caps, pacing).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
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


class ThrottleStore(Protocol):
    """Shared budget state. Times are integer milliseconds."""

    def acquire(self, key: str, budget: int, window_ms: int) -> int:
        """Take one request slot. Return 0 if taken, else ms to wait before asking again."""
        ...

    def pause(self, key: str, ms: int) -> None:
        """Make every ``acquire`` on ``key`` wait at least ``ms`` from now (never shortens)."""
        ...


class MemoryThrottleStore:
    """In-process store (thread-safe). Each process has its own budget estimate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[str, deque[float]] = {}
        self._paused_until: dict[str, float] = {}

    def _now_ms(self) -> float:
        return self._clock() * 1000.0

    def acquire(self, key: str, budget: int, window_ms: int) -> int:
        with self._lock:
            now = self._now_ms()
            until = self._paused_until.get(key, 0.0)
            if until > now:
                return max(1, int(until - now + 0.999))
            slots = self._slots.setdefault(key, deque())
            while slots and slots[0] <= now - window_ms:
                slots.popleft()
            if len(slots) < budget:
                slots.append(now)
                return 0
            return max(1, int(slots[0] + window_ms - now + 0.999))

    def pause(self, key: str, ms: int) -> None:
        if ms <= 0:
            return
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


# KEYS[1] = slot log (sorted set, score = ms), KEYS[2] = pause marker (string with PX ttl).
# Uses the Redis server clock so that all workers agree on "now".
_ACQUIRE_LUA = """
local pttl = redis.call('PTTL', KEYS[2])
if pttl > 0 then return pttl end
local budget = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < budget then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
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
    ``{prefix}{key}:slots`` and ``{prefix}{key}:pause``; both expire on their own.
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

    def acquire(self, key: str, budget: int, window_ms: int) -> int:
        member = uuid.uuid4().hex
        try:
            result = self._acquire(
                keys=[f"{self.prefix}{key}:slots", f"{self.prefix}{key}:pause"],
                args=[int(budget), int(window_ms), member],
            )
        except redis.RedisError as exc:
            self._unavailable(exc)
            return 0
        return int(result)

    def pause(self, key: str, ms: int) -> None:
        if ms <= 0:
            return
        try:
            self._pause(keys=[f"{self.prefix}{key}:pause"], args=[int(ms)])
        except redis.RedisError as exc:
            self._unavailable(exc)

    def reset(self, key: str) -> None:
        """Forget state for ``key`` (tests)."""
        self._redis.delete(f"{self.prefix}{key}:slots", f"{self.prefix}{key}:pause")


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


class Throttle:
    """Per-client policy over a shared store.

    * before each request: take a slot (wait while the store says so, each wait capped);
    * after each response: if ``brightpearl-requests-remaining`` is at or below
      ``low_remaining``, pace the rest of the period (``period / (remaining + 1)``) for every
      process sharing the store;
    * after a 503: pause everyone for ``brightpearl-next-throttle-period`` ms (+ jitter, capped).

    ``max_wait`` caps any single sleep so tests with tiny caps stay fast; the waiting loop
    itself is bounded by ``max_acquire_seconds``. With ``max_block_seconds`` set, a wait longer
    than that is not slept at all: :class:`BudgetSpent` is raised with the time to come back
    (a worker slot is never spent sleeping for budget).
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

    def _nap(self, seconds: float) -> None:
        seconds = max(0.0, min(seconds, self.max_wait))
        if seconds:
            self.waited_seconds += seconds
            self._sleep(seconds)

    def before_request(self) -> None:
        """Block until the shared budget allows one more request (or raise BudgetSpent)."""
        deadline = time.monotonic() + self.max_acquire_seconds
        while True:
            wait_ms = self.store.acquire(self.key, self.budget, self.window_ms)
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
        """Slow down proactively when the server says the budget is nearly spent."""
        remaining = parse_int_header(headers, REMAINING_HEADER)
        period_ms = parse_int_header(headers, PERIOD_HEADER)
        if remaining is None or period_ms is None or remaining > self.low_remaining:
            return
        pace_ms = period_ms if remaining == 0 else period_ms // (remaining + 1)
        pace_ms = min(pace_ms, int(self.max_wait * 1000))
        if pace_ms > 0:
            logger.debug("budget low (remaining=%s); pacing %sms", remaining, pace_ms)
            self.store.pause(self.key, pace_ms)

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
