"""The shared cache's Redis, one client per process, for what is touched on every delivery.

Django's RedisCache builds a new `redis.Redis` object for every call (about 0.5 ms of Python
each), and its `incr` makes two round trips (EXISTS, then INCRBY). The metric counters and the
inbound wake-up marker run on every webhook delivery and every sync item, so they use one
client per process on the same Redis and the same keys (`cache.make_key`: prefix and version),
one command each. Values stay readable through the cache API (the RedisCache stores integers
as they are). Without a Redis cache (a laptop: files under var/) `None` is returned and the
callers use the cache API.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def client() -> redis.Redis | None:
    """The process's client for the default cache's Redis, or None when that cache is not
    Redis. redis-py's pool notices a fork and opens fresh connections in the child."""
    cache = settings.CACHES["default"]
    if not cache["BACKEND"].endswith(".RedisCache"):
        return None
    location = cache["LOCATION"]
    url = location[0] if isinstance(location, list | tuple) else location
    with _lock:
        found = _clients.get(url)
        if found is None:
            found = _clients[url] = redis.Redis.from_url(url)
        return found
