"""The beat scheduler: django-celery-beat's database scheduler plus a heartbeat.

On every tick (at most `CELERY_BEAT_MAX_LOOP_INTERVAL` seconds apart) beat writes the time to
the shared cache; the health endpoint reads it to tell whether exactly-one-beat is alive. The
heartbeat is written by beat itself, so a stopped worker does not make beat look dead.
"""

import logging
import time

from django.core.cache import cache
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger("connector.beat")
HEARTBEAT_KEY = "beat:heartbeat"
HEARTBEAT_EVERY_SECONDS = 5


def record_heartbeat(now: float | None = None) -> None:
    cache.set(HEARTBEAT_KEY, time.time() if now is None else now, timeout=None)


def last_heartbeat() -> float | None:
    value = cache.get(HEARTBEAT_KEY)
    return float(value) if value is not None else None


class HeartbeatScheduler(DatabaseScheduler):
    _last_heartbeat = 0.0

    def tick(self, *args, **kwargs):
        now = time.time()
        if now - self._last_heartbeat >= HEARTBEAT_EVERY_SECONDS:
            try:
                record_heartbeat(now)
                self._last_heartbeat = now
            except Exception as exc:  # the cache being down must not stop the schedules
                logger.warning("could not record beat's heartbeat: %s", exc)
        return super().tick(*args, **kwargs)
