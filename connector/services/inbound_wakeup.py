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
"""

from __future__ import annotations

from django.core.cache import cache

from .. import shared_redis
from ..models import Connection
from ..models.webhooks import stuck_after


def _key(connection: Connection) -> str:
    created = connection.created_at.timestamp() if connection.created_at else 0
    return f"inbound-drain:{connection.pk}:{created:.6f}"


def raise_marker(connection: Connection) -> bool:
    """True for the one delivery that raised the marker: it queues the drain; the others are
    covered by that drain. One `SET NX EX` on Redis (connector/shared_redis.py)."""
    ttl = stuck_after().total_seconds()
    shared = shared_redis.client()
    if shared is None:
        return bool(cache.add(_key(connection), 1, timeout=ttl))
    return bool(shared.set(cache.make_key(_key(connection)), 1, nx=True, ex=max(int(ttl), 1)))


def lower_marker(connection: Connection) -> None:
    """The drain started (or its publish failed): deliveries from now on queue the next one."""
    shared = shared_redis.client()
    if shared is None:
        cache.delete(_key(connection))
    else:
        shared.delete(cache.make_key(_key(connection)))
