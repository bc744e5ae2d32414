"""Health endpoints (django-health-check) for load balancers, orchestrators and monitoring.

* `/health/`       — everything the connector needs: database, broker, beat alive, and each
                     enabled connection's age of the last successful sync (JSON lists them).
* `/health/live/`  — the web process itself answers and reaches its database: the container
                     healthcheck of `web`, so a stopped beat does not get web restarted.

Both answer 200 when healthy and 500 with the failing part named otherwise; add
`?format=json` (or `Accept: application/json`) for a machine-readable body.
"""

from __future__ import annotations

import dataclasses
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from config.celery_app import app

from .beat import last_heartbeat
from .metrics import sync_ages


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (Redis in production)."""

    def run(self):
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
        except Exception as exc:  # any failure to connect means the broker is unavailable
            raise ServiceUnavailable(f"broker unreachable ({type(exc).__name__})") from exc


@dataclasses.dataclass
class BeatAlive(HealthCheck):
    """Beat wrote its heartbeat recently (see connector/beat.py)."""

    def run(self):
        try:
            heartbeat = last_heartbeat()
        except Exception as exc:  # the cache unreadable: beat's state is unknown
            raise ServiceUnavailable(
                f"cannot read beat's heartbeat ({type(exc).__name__})"
            ) from exc
        if heartbeat is None:
            raise ServiceUnavailable("beat has never reported: is the one beat process running?")
        age = time.time() - heartbeat
        if age > settings.HEALTH_BEAT_MAX_AGE_SECONDS:
            raise ServiceUnavailable(f"beat last reported {age:.0f} s ago")


@dataclasses.dataclass
class SyncAges(HealthCheck):
    """Every enabled connection synced successfully recently enough."""

    ages: dict = dataclasses.field(default_factory=dict, repr=False)

    def run(self):
        try:  # checks run in a worker thread: never leave its database connection open
            ages = sync_ages()
        finally:
            connection.close()
        stale = []
        for connection_id, age, limit in ages:
            self.ages[str(connection_id)] = {
                "last_successful_sync_age_seconds": round(age),
                "stale": age > limit,
            }
            if age > limit:
                stale.append(f"connection {connection_id}: {age / 60:.0f} min")
        if stale:
            raise ServiceUnavailable("no successful sync for " + ", ".join(stale))


class ConnectorHealthView(HealthCheckView):
    checks = (Database, Broker, BeatAlive, SyncAges)

    def render_to_response_json(self, status):
        body = {repr(r.check): "OK" if not r.error else str(r.error) for r in self.results}
        for result in self.results:
            if isinstance(result.check, SyncAges):
                body["connections"] = result.check.ages
        return JsonResponse(body, status=status)


class LiveView(HealthCheckView):
    checks = (Database,)


health = login_not_required(ConnectorHealthView.as_view())
live = login_not_required(LiveView.as_view())
