"""The overview staff land on: per connection, is it healthy, and what needs them.

Health: the last sync that got through and its age, the last "Check" result, whether the
Brightpearl webhooks are registered (and whether inbound events failed lately). Counts, each
with the admin list it stands for: returns waiting for a credit, credited and waiting for the
goods, partly received, flagged, open failures, processed and refunded today / this week. Two
small charts: returns per day by outcome, Brightpearl requests per hour against the budget.

Every number is one grouped query over all connections shown (never one query per connection
per number); connections that need attention come first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.urls import reverse
from django.utils import timezone

from returns import lifecycle
from returns.models import Rma

from ..models import Connection, Problem, SyncEvent, SyncRun, WebhookEvent

MAX_CONNECTIONS = 30
CHART_DAYS = 14
GOT_THROUGH = (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)


@dataclass
class Tile:
    label: str
    value: int
    url: str
    tone: str = ""  # "red" / "amber" when the number needs someone


@dataclass
class ConnectionOverview:
    connection: Connection
    last_sync_at: datetime | None = None
    sync_stale: bool = False
    failed_webhooks: int = 0
    tiles: list[Tile] = field(default_factory=list)
    returns_per_day: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    requests_per_hour: list[tuple[str, int]] = field(default_factory=list)

    @property
    def requests_total(self) -> int:
        return sum(used for _, used in self.requests_per_hour)

    @property
    def busiest_share(self) -> str:
        """The busiest hour's requests as a share of the hourly budget (per minute × 60)."""
        budget = max(1, settings.BRIGHTPEARL_REQUESTS_PER_MINUTE * 60)
        return f"{max([used for _, used in self.requests_per_hour] + [0]) / budget:.0%}"

    @property
    def attention(self) -> int:
        return sum(t.value for t in self.tiles if t.tone)


def _url(name: str, **params) -> str:
    return f"{reverse(name)}?{urlencode(params)}"


def build(now: datetime | None = None) -> tuple[list[ConnectionOverview], int]:
    """The connections to show (those needing attention first) and how many were left out."""
    now = now or timezone.now()
    connections = list(Connection.objects.order_by("name"))
    ids = [c.pk for c in connections]
    views = {c.pk: ConnectionOverview(connection=c) for c in connections}
    _health(views, ids, now)
    _counts(views, ids, now)
    _charts(views, ids, now)
    ordered = sorted(views.values(), key=lambda v: (-v.attention, v.connection.name))
    return ordered[:MAX_CONNECTIONS], max(0, len(ordered) - MAX_CONNECTIONS)


def _health(views, ids, now) -> None:
    last = (
        SyncRun.objects.filter(connection_id__in=ids, status__in=GOT_THROUGH)
        .values("connection_id")
        .annotate(at=Max("finished_at"))
    )
    for row in last:
        views[row["connection_id"]].last_sync_at = row["at"]
    for view in views.values():
        interval = timedelta(minutes=max(1, view.connection.sync_interval_minutes))
        limit = max(interval * settings.HEALTH_SYNC_MAX_INTERVALS, timedelta(minutes=15))
        view.sync_stale = view.connection.enabled and (
            view.last_sync_at is None or now - view.last_sync_at > limit
        )
    failed = (
        WebhookEvent.objects.filter(
            connection_id__in=ids,
            status=WebhookEvent.Status.FAILED,
            received_at__gte=now - timedelta(days=1),
        )
        .values("connection_id")
        .annotate(n=Count("pk"))
    )
    for row in failed:
        views[row["connection_id"]].failed_webhooks = row["n"]


def _counts(views, ids, now) -> None:
    rmas = defaultdict(int)
    for row in (
        Rma.objects.filter(connection_id__in=ids)
        .filter(Q(flagged=True) | Q(status__in=_WAITING))
        .values("connection_id", "status", "flagged")
        .annotate(n=Count("pk"))
    ):
        key = "flagged" if row["flagged"] else row["status"]
        rmas[(row["connection_id"], key)] += row["n"]
    failures = dict(
        Problem.objects.filter(
            connection_id__in=ids, state=Problem.State.OPEN, outcome=Problem.Outcome.FAILED
        )
        .values_list("connection_id")
        .annotate(n=Count("pk"))
    )
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    done = _done_since(ids, week, today)
    for pk, view in views.items():
        base = {"connection__id__exact": pk}
        view.tiles = [
            *_waiting_tiles(rmas, pk, base),
            *_attention_tiles(rmas[(pk, "flagged")], failures.get(pk, 0), base),
            *_done_tiles(done, pk, base, today, week),
        ]


_RMA_LIST = "admin:returns_rma_changelist"


def _waiting_tiles(rmas, pk, base) -> list[Tile]:
    return [
        Tile(
            label,
            rmas[(pk, status)],
            _url(_RMA_LIST, **base, status__exact=status, flagged__exact=0),
        )
        for label, status in (
            ("Waiting for a credit", lifecycle.APPROVED),
            ("Credited, awaiting goods", lifecycle.CREDITED),
            ("Partly received", lifecycle.PARTIALLY_RECEIVED),
        )
    ]


def _attention_tiles(flagged: int, failed: int, base) -> list[Tile]:
    return [
        Tile(
            "Flagged (needs staff)",
            flagged,
            _url(_RMA_LIST, **base, flagged__exact=1),
            "amber" if flagged else "",
        ),
        Tile(
            "Failed (open problems)",
            failed,
            _url("admin:connector_problem_changelist", **base, outcome__exact="failed"),
            "red" if failed else "",
        ),
    ]


def _done_tiles(done, pk, base, today, week) -> list[Tile]:
    return [
        Tile(
            f"{label} {period}",
            done[(pk, key, period)],
            _url(
                "admin:connector_syncevent_changelist",
                **base,
                kind__exact=kind,
                outcome__exact="succeeded",
                created_at__gte=start.isoformat(),
            ),
        )
        for label, kind, key in (
            ("Processed", SyncEvent.Kind.PROCESS, "process"),
            ("Refunded", SyncEvent.Kind.REFUND, "refund"),
        )
        for period, start in (("today", today), ("this week", week))
    ]


_WAITING = (lifecycle.APPROVED, lifecycle.CREDITED, lifecycle.PARTIALLY_RECEIVED)


def _done_since(ids, week: datetime, today: datetime) -> dict:
    """Distinct returns processed / refunded per connection, today and this week."""
    done = defaultdict(int)
    rows = (
        SyncEvent.objects.filter(
            connection_id__in=ids,
            kind__in=(SyncEvent.Kind.PROCESS, SyncEvent.Kind.REFUND),
            outcome=SyncEvent.Outcome.SUCCEEDED,
            created_at__gte=min(week, today),
        )
        .values("connection_id", "kind", "rma_id")
        .annotate(last=Max("created_at"))
    )
    for row in rows:
        key = (row["connection_id"], row["kind"])
        if row["last"] >= week:
            done[(*key, "this week")] += 1
        if row["last"] >= today:
            done[(*key, "today")] += 1
    return done


OUTCOMES = ("processed", "flagged", "in progress", "ended")


def _outcome(status: str, flagged: bool) -> str:
    if flagged:
        return "flagged"
    if status in (lifecycle.PROCESSED, lifecycle.CLOSED):
        return "processed"
    if status in (lifecycle.REJECTED, lifecycle.CANCELLED):
        return "ended"
    return "in progress"


def _charts(views, ids, now) -> None:
    first_day = timezone.localtime(now).date() - timedelta(days=CHART_DAYS - 1)
    days = [first_day + timedelta(days=n) for n in range(CHART_DAYS)]
    per_day = defaultdict(lambda: defaultdict(int))
    for row in (
        Rma.objects.filter(connection_id__in=ids, created_at__date__gte=first_day)
        .annotate(day=TruncDate("created_at"))
        .values("connection_id", "day", "status", "flagged")
        .annotate(n=Count("pk"))
    ):
        outcome = _outcome(row["status"], row["flagged"])
        per_day[(row["connection_id"], row["day"])][outcome] += row["n"]
    start_hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    hours = [start_hour - timedelta(hours=n) for n in range(23, -1, -1)]
    per_hour = defaultdict(int)
    for row in (
        SyncRun.objects.filter(connection_id__in=ids, started_at__gte=hours[0])
        .annotate(hour=TruncHour("started_at"))
        .values("connection_id", "hour")
        .annotate(n=Sum("brightpearl_requests"))
    ):
        per_hour[(row["connection_id"], timezone.localtime(row["hour"]))] += row["n"] or 0
    for pk, view in views.items():
        view.returns_per_day = [(f"{d:%-d %b}", dict(per_day[(pk, d)])) for d in days]
        view.requests_per_hour = [(f"{h:%H}:00", per_hour[(pk, h)]) for h in hours]
