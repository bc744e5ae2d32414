"""At most one pending drain of inbound events per connection (issue #11).

The webhook views store each delivery in one INSERT and answer. Queueing a Celery task per
delivery cost more than the INSERT itself (a broker publish, ~1.4 ms), so a delivery only
raises this connection's wake-up marker — one `SET NX` in the shared cache (Redis in
production) — and only the delivery that raised it queues a drain task
(`connector.tasks.drain_inbound_events`), which processes every due event of the connection.

No wake-up is lost, the same way as the sync marker (services/pending.py): the drain lowers
the marker when it starts, before it reads any event, so

* an event stored before the drain started is read by it (the marker was seen raised because
  the drain had not lowered it yet);
* an event stored after that finds the marker lowered and queues the next drain.

The marker expires after `stuck_after()` (60 s): a drain whose message was lost (a dead host's
prefetch, a refused publish) stops coalescing then, and housekeeping
(`redispatch_inbound_events`) dispatches every event left waiting that long, one by one.

The key names the connection's row and its creation time, so a marker left by a deleted
connection (or a test database re-created with the same IDs) never silences a new one.

A web process that has just seen the marker raised trusts that for
`INBOUND_WAKEUP_MEMO_SECONDS` (0.1 s) and does not ask Redis again: in a burst, most
deliveries make no Redis round trip at all. Still no wake-up is lost: a delivery that trusted
its memory stored its event less than that long after the marker was last seen raised, so less
than that long after the drain lowered it. A drain therefore reads the due events once more
after that much time has passed since it lowered the marker (`settled_at`), and takes them.
The price: a drain holds its slot at least that long (0.1 s; an event's own processing usually
takes longer). Web and worker processes must use the same value.

Where the memory does not cover a delivery, housekeeping does (within `stuck_after()`, 60 s,
as for a lost drain message): if the drain that lowered the marker dies before its last read
(its message is redelivered — `acks_late` — and that drain reads them), if another process's
publish failed and lowered the marker, or if the marker vanished without a drain (expiry,
Redis restarted) less than 0.1 s after this process saw it.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from .. import shared_redis
from ..models import Connection
from ..models.webhooks import stuck_after


def _key(connection: Connection) -> str:
    created = connection.created_at.timestamp() if connection.created_at else 0
    return f"inbound-drain:{connection.pk}:{created:.6f}"


# This process's memory: marker key -> when (monotonic, taken before asking) the marker was
# last found raised, by this process raising it or finding it up.
_seen_raised: dict[str, float] = {}


def memo_seconds() -> float:
    """A setting read per delivery (Celery's own configuration costs ~40 µs a read, so the
    settings say it: 0 when tasks run eagerly, where the drain runs inside the delivery and
    its wait for the memory to lapse would hold the request)."""
    return max(float(settings.INBOUND_WAKEUP_MEMO_SECONDS), 0.0)


def raise_marker(connection: Connection) -> bool:
    """True for the one delivery that raised the marker: it queues the drain; the others are
    covered by that drain. One `SET NX EX` on Redis (connector/shared_redis.py), unless this
    process saw the marker raised less than `memo_seconds()` ago."""
    key, asked = _key(connection), time.monotonic()
    if asked - _seen_raised.get(key, float("-inf")) < memo_seconds():
        return False
    ttl = stuck_after().total_seconds()
    shared = shared_redis.client()
    if shared is None:
        raised = bool(cache.add(key, 1, timeout=ttl))
    else:
        raised = bool(shared.set(cache.make_key(key), 1, nx=True, ex=max(int(ttl), 1)))
    if len(_seen_raised) > 10_000:  # old connections' entries: forget them all, once
        _seen_raised.clear()
    _seen_raised[key] = asked
    return raised


def lower_marker(connection: Connection) -> float:
    """The drain started (or its publish failed): deliveries from now on queue the next one.
    Returns when (monotonic) every delivery that trusted its memory instead has stored its
    event: the drain's last read of due events starts no earlier."""
    key = _key(connection)
    _seen_raised.pop(key, None)
    shared = shared_redis.client()
    if shared is None:
        cache.delete(key)
    else:
        shared.delete(cache.make_key(key))
    return time.monotonic() + memo_seconds()


def marker_raised(connection: Connection) -> bool:
    """Whether the connection's marker is up (a drain is pending), as Redis says."""
    shared = shared_redis.client()
    if shared is None:
        return cache.get(_key(connection)) is not None
    return bool(shared.exists(cache.make_key(_key(connection))))
