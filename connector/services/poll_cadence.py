"""When a scheduled sync lists the platform's changes (the poll), for a platform that counts
calls against a daily allowance (ReturnGO: 2,000 a day per key, issue #11).

The list call buys nothing when the platform's webhooks already named what changed: each
webhook re-reads its own return (`platform_events.py`, no list call). So while they arrive, the
poll is only the safety net — ReturnGO's own advice: webhooks plus a sparse poll — and it follows
the day's allowance, not the clock:

* webhooks arriving (one processed within the poll interval, `webhook_poll_minutes` in the
  registry, `PLATFORM_WEBHOOK_POLL_MINUTES` to override): at most one poll per interval;
* the day's reads left down to the registry's `daily_poll_reserve` (after the write reserve):
  with webhooks arriving, no poll until the allowance resets at 00:00 UTC — those calls are the
  webhook-named returns' (and the writes keep their own reserve); without webhooks the poll is
  all the intake there is, so it runs once per interval.

Otherwise every scheduled run polls, as before. Runs asked for by staff (admin, command) always
poll. A deferred poll stores no row of its own: the scheduled run that skipped it says so in its
message and counts (`poll_deferred`), next to what the rest of its steps did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from returns.platforms import registry

from ..models import Connection, SyncRun, WebhookEvent
from .platforms import call_budget_for

# Scheduled runs are spread over the minute they fall due: a poll due at 10:00 is not put off
# to the next run because this run started at 09:59:40.
SCHEDULE_SLACK = timedelta(minutes=2)


@dataclass(frozen=True)
class PollPlan:
    due: bool
    reason: str = ""  # why not, in the merchant's words (the run's message)
    next_at: datetime | None = None


POLL_NOW = PollPlan(True)


def poll_interval(platform: str) -> timedelta | None:
    """The safety-net interval while the platform's webhooks arrive (None: no such cadence)."""
    spec = registry.find(platform)
    minutes = settings.PLATFORM_WEBHOOK_POLL_MINUTES.get(
        platform, spec.webhook_poll_minutes if spec else None
    )
    return timedelta(minutes=minutes) if minutes else None


def last_webhook_processed(connection: Connection, since: datetime) -> datetime | None:
    """When the newest of the platform's webhooks for this connection was processed (re-read
    and acted on), if one was since `since`."""
    return (
        WebhookEvent.objects.filter(
            connection=connection,
            source=connection.platform,
            status=WebhookEvent.Status.PROCESSED,
            processed_at__gte=since,
        )
        .order_by("-processed_at")
        .values_list("processed_at", flat=True)
        .first()
    )


def plan_poll(connection: Connection, trigger: str | None, now: datetime | None = None) -> PollPlan:
    """Whether this run lists the platform's changes, and if not why and until when."""
    interval = poll_interval(connection.platform)
    spec = registry.find(connection.platform)
    if trigger != SyncRun.Trigger.BEAT or interval is None or spec is None:
        return POLL_NOW
    now = now or timezone.now()
    heard = last_webhook_processed(connection, now - interval)
    reads_left = _reads_left(connection, spec)
    low = reads_left is not None and reads_left <= spec.daily_poll_reserve
    if low and heard:
        midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=now.tzinfo)
        return PollPlan(
            False,
            f"{spec.label} list poll deferred: {reads_left} of the day's "
            f"{spec.daily_call_limit:,} calls are left for reads, kept for the returns its "
            f"webhooks name (last processed {heard:%H:%M} UTC); the next poll after 00:00 UTC, "
            "when the allowance resets.",
            midnight,
        )
    last = connection.platform_polled_at
    if not (heard or low) or last is None or now >= last + interval - SCHEDULE_SLACK:
        return POLL_NOW
    minutes = int(interval.total_seconds() // 60)
    why = (
        f"its webhooks are arriving (last processed {heard:%H:%M} UTC), so it runs every "
        f"{minutes} min as the safety net"
        if heard
        else f"only {reads_left} of the day's {spec.daily_call_limit:,} calls are left for "
        f"reads, so it runs every {minutes} min until the allowance resets"
    )
    next_at = last + interval
    return PollPlan(
        False,
        f"{spec.label} list poll deferred: {why}; last poll {last:%H:%M}, next after "
        f"{next_at:%H:%M} UTC.",
        next_at,
    )


def _reads_left(connection: Connection, spec: registry.PlatformSpec) -> int | None:
    budget = call_budget_for(connection)
    if budget is None:
        return None
    return budget.remaining - budget.write_reserve
