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
from collections.abc import Callable, Iterable, Sequence
from itertools import product

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from kombu.exceptions import ChannelError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from config.celery_app import app

from . import shared_redis
from .beat import last_heartbeat
from .models import Connection, SyncEvent, SyncRun, WebhookEvent
from .queues import all_queues

logger = logging.getLogger("connector.metrics")


# --- counters in the shared cache ----------------------------------------------------------
def _key(name: str, labels: Sequence[str]) -> str:
    return "metric:" + name + ":" + "|".join(labels)


def incr(name: str, *labels: str, amount: int = 1) -> None:
    """Add to a counter shared by every process; never raises."""
    key = _key(name, labels)
    try:
        shared = shared_redis.client()
        if shared is not None:  # one command, no client built per call (shared_redis.py)
            shared.incrby(cache.make_key(key), amount)
            return
        try:
            cache.incr(key, amount)
        except ValueError:  # not there yet
            if not cache.add(key, amount, timeout=None):
                cache.incr(key, amount)
    except Exception as exc:  # whatever the cache raises: a failure to count never fails work
        logger.debug("metric %s not counted: %s", key, exc)


def once(marker: str, ttl: int = 3600) -> bool:
    """True the first time `marker` is seen (so a row saved twice is counted once)."""
    try:
        return bool(cache.add("metric-seen:" + marker, 1, timeout=ttl))
    except Exception:  # the cache down: not counted, never an error for the caller
        return False


def read(name: str, label_sets: Iterable[Sequence[str]]) -> dict[tuple[str, ...], int]:
    keys = {_key(name, labels): tuple(labels) for labels in label_sets}
    values = cache.get_many(list(keys))
    return {keys[k]: int(v) for k, v in values.items()}


# --- the collector -------------------------------------------------------------------------
def shared_counters() -> list[tuple[str, str, list[str], str, list[tuple[str, ...]]]]:
    """Every counter kept in the shared cache: (metric, help, label names, cache key, every
    combination of label values — a counter never bumped still reads 0)."""
    return [
        (
            "connector_sync_runs",
            "Sync runs finished, by trigger and final status (a sync skipped because another "
            "run held its connection, or its connection was disabled, is counted here only).",
            ["trigger", "status"],
            "sync_runs",
            list(product(SyncRun.Trigger.values, SyncRun.Status.values)),
        ),
        (
            "connector_sync_items",
            "Items handled by sync runs and webhooks, by kind and outcome.",
            ["kind", "outcome"],
            "sync_items",
            list(product(SyncEvent.Kind.values, SyncEvent.Outcome.values)),
        ),
        (
            "connector_brightpearl_requests",
            "HTTP requests sent to Brightpearl (retries included).",
            [],
            "brightpearl_requests",
            [()],
        ),
        (
            "connector_brightpearl_throttled",
            "Brightpearl answers with HTTP 503 (throttled).",
            [],
            "brightpearl_throttled",
            [()],
        ),
        (
            "connector_webhooks_received",
            "Inbound webhooks stored, by source.",
            ["source"],
            "webhooks_received",
            [(s,) for s in WebhookEvent.Source.values],
        ),
    ]


def _measured(family, measure: Callable[[], Iterable[tuple[list[str], float]]], what: str):
    """`family` filled with the (labels, value) samples `measure()` returns — or, when its
    source cannot be read, nothing but a warning: one source down never fails the scrape."""
    try:
        samples = list(measure())
    except Exception as exc:  # the cache or the broker down, whatever the client raises
        logger.warning("metrics: cannot read %s: %s", what, exc)
        return
    for labels, value in samples:
        family.add_metric(labels, value)
    yield family


class ConnectorCollector:
    """Reads the shared counters and measures the gauges at scrape time."""

    def collect(self):
        for spec in shared_counters():
            yield from self._counter(*spec)
        yield from self._queue_depth()
        yield from self._ages()

    @staticmethod
    def _counter(name, documentation, labels, key, label_sets):
        def measure():
            values = read(key, label_sets)
            return [(list(ls), values.get(tuple(ls), 0)) for ls in label_sets]

        family = CounterMetricFamily(name, documentation, labels=labels)
        yield from _measured(family, measure, "counters")

    @staticmethod
    def _queue_depth():
        family = GaugeMetricFamily(
            "connector_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        measure = lambda: [([queue], depth) for queue, depth in queue_depths().items()]  # noqa: E731
        yield from _measured(family, measure, "the queue depth")

    @staticmethod
    def _ages():
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
