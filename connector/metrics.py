"""Prometheus metrics for the whole deployment, served by the web process at /metrics.

Work happens in many processes (gunicorn workers, Celery workers on several hosts), so the
counters live in the shared cache (Redis in production) and are read at scrape time by one
collector: every scrape of any web process sees the same totals. Counters are bumped by
signal handlers and the Brightpearl client's response hook (connector/observability.py), never
inside the business code, and a failure to count never fails the work. Gauges (queue depth,
beat heartbeat age, age of each connection's last successful sync) are measured at scrape time.

prometheus-client (the maintained reference client) renders the exposition format.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

logger = logging.getLogger("connector.metrics")


# --- counters in the shared cache ----------------------------------------------------------
def _key(name: str, labels: Sequence[str]) -> str:
    return "metric:" + name + ":" + "|".join(labels)


def incr(name: str, *labels: str, amount: int = 1) -> None:
    """Add to a counter shared by every process; never raises."""
    key = _key(name, labels)
    try:
        try:
            cache.incr(key, amount)
        except ValueError:  # not there yet
            if not cache.add(key, amount, timeout=None):
                cache.incr(key, amount)
    except Exception as exc:
        logger.debug("metric %s not counted: %s", key, exc)


def once(marker: str, ttl: int = 3600) -> bool:
    """True the first time `marker` is seen (so a row saved twice is counted once)."""
    try:
        return bool(cache.add("metric-seen:" + marker, 1, timeout=ttl))
    except Exception:
        return False


def read(name: str, label_sets: Iterable[Sequence[str]]) -> dict[tuple[str, ...], int]:
    keys = {_key(name, labels): tuple(labels) for labels in label_sets}
    values = cache.get_many(list(keys))
    return {keys[k]: int(v) for k, v in values.items()}


# --- the collector -------------------------------------------------------------------------
class ConnectorCollector:
    """Reads the shared counters and measures the gauges at scrape time."""

    def collect(self):
        from .models import SyncEvent, SyncRun, WebhookEvent

        yield from self._counter(
            "connector_sync_runs",
            "Sync runs finished, by trigger and final status.",
            ["trigger", "status"],
            "sync_runs",
            [(t, s) for t in SyncRun.Trigger.values for s in SyncRun.Status.values],
        )
        yield from self._counter(
            "connector_sync_items",
            "Items handled by sync runs and webhooks, by kind and outcome.",
            ["kind", "outcome"],
            "sync_items",
            [(k, o) for k in SyncEvent.Kind.values for o in SyncEvent.Outcome.values],
        )
        yield from self._counter(
            "connector_brightpearl_requests",
            "HTTP requests sent to Brightpearl (retries included).",
            [],
            "brightpearl_requests",
            [()],
        )
        yield from self._counter(
            "connector_brightpearl_throttled",
            "Brightpearl answers with HTTP 503 (throttled).",
            [],
            "brightpearl_throttled",
            [()],
        )
        yield from self._counter(
            "connector_webhooks_received",
            "Inbound webhooks stored, by source.",
            ["source"],
            "webhooks_received",
            [(s,) for s in WebhookEvent.Source.values],
        )
        yield from self._queue_depth()
        yield from self._ages()

    @staticmethod
    def _counter(name, documentation, labels, key, label_sets):
        family = CounterMetricFamily(name, documentation, labels=labels)
        try:
            values = read(key, label_sets)
        except Exception as exc:
            logger.warning("metrics: cannot read counters: %s", exc)
            return
        for label_values in label_sets:
            family.add_metric(list(label_values), values.get(tuple(label_values), 0))
        yield family

    @staticmethod
    def _queue_depth():
        family = GaugeMetricFamily(
            "connector_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        try:
            for queue, depth in queue_depths().items():
                family.add_metric([queue], depth)
        except Exception as exc:
            logger.warning("metrics: cannot read the queue depth: %s", exc)
            return
        yield family

    @staticmethod
    def _ages():
        from .beat import last_heartbeat

        beat = GaugeMetricFamily(
            "connector_beat_heartbeat_age_seconds", "Seconds since beat's last heartbeat."
        )
        heartbeat = last_heartbeat()
        if heartbeat is not None:
            beat.add_metric([], max(0.0, time.time() - heartbeat))
            yield beat
        syncs = GaugeMetricFamily(
            "connector_last_successful_sync_age_seconds",
            "Seconds since each enabled connection's last successful sync (since it was "
            "created when it never succeeded).",
            labels=["connection"],
        )
        for connection_id, age, _limit in sync_ages():
            syncs.add_metric([str(connection_id)], age)
        yield syncs


def queue_depths() -> dict[str, int]:
    """Messages waiting per queue, asked of the broker itself (Redis or the filesystem one)."""
    from kombu.exceptions import ChannelError

    from config.celery_app import app

    from .queues import all_queues

    queues = set(all_queues(settings.CELERY_TASK_DEFAULT_QUEUE))
    queues.update(q.name for q in (app.conf.task_queues or ()))
    depths = {}
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        channel = conn.default_channel
        for queue in sorted(queues):
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # never declared (Redis drops empty lists): nothing waits
                depths[queue] = 0
    return depths


def sync_ages() -> list[tuple[int, float, float]]:
    """(connection ID, seconds since its last successful sync, the age that counts as stale)
    for every enabled connection."""
    from django.db.models import Max, Q

    from .models import Connection, SyncRun

    now = timezone.now()
    rows = Connection.objects.filter(enabled=True).annotate(
        last_ok=Max("sync_runs__finished_at", filter=Q(sync_runs__status=SyncRun.Status.SUCCEEDED))
    )
    result = []
    for connection in rows.order_by("pk"):
        since = connection.last_ok or connection.created_at
        limit = max(
            settings.HEALTH_SYNC_MAX_INTERVALS * connection.sync_interval_minutes * 60,
            settings.HEALTH_SYNC_MIN_AGE_SECONDS,
        )
        result.append((connection.pk, max(0.0, (now - since).total_seconds()), float(limit)))
    return result


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(ConnectorCollector())


@login_not_required
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint. With METRICS_TOKEN set, `Authorization: Bearer <token>`
    is required (403 otherwise)."""
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return HttpResponse("A valid metrics token is required.\n", status=403)
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
