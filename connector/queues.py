"""Queues by kind: which Celery queue each task goes to, so one kind of work never waits
behind another (a slow or throttled merchant's sync never delays anyone's webhook).

Every queue name is derived from ``CELERY_TASK_DEFAULT_QUEUE`` (``celery`` unless set):
``celery.inbound``, ``celery.sync``, ``celery.bulk``, ``celery.housekeeping``, plus the default
queue itself for anything unrouted. One knob moves a whole deployment (or a test, or a
benchmark) to its own set of queues. docs/deployment.md says how many workers each kind needs.
"""

from __future__ import annotations

from typing import Any

INBOUND = "inbound"  # webhooks (Brightpearl, platforms) and intake-triggered syncs
SYNC = "sync"  # scheduled and admin/command syncs
BULK = "bulk"  # backlogs: follow-up passes of a connection with more work than one run; backfills
HOUSEKEEPING = "housekeeping"  # pruning, re-dispatch of overdue events, the sync dispatcher,
# alert digests
KINDS = (INBOUND, SYNC, BULK, HOUSEKEEPING)

# Task name → kind. A sync task's kind depends on why it runs (see route_task).
TASK_KINDS = {
    "connector.tasks.process_inbound_event": INBOUND,
    "connector.tasks.drain_inbound_events": INBOUND,
    "connector.tasks.process_webhook_event": INBOUND,
    "connector.tasks.process_platform_event": INBOUND,
    "connector.tasks.sync_connection": SYNC,
    "connector.tasks.run_backfill": BULK,
    "connector.tasks.dispatch_due_syncs": HOUSEKEEPING,
    "connector.tasks.prune_sync_logs": HOUSEKEEPING,
    "connector.tasks.redispatch_inbound_events": HOUSEKEEPING,
    "connector.tasks.send_alert_digests": HOUSEKEEPING,
}


def queue_name(kind: str, base: str | None = None) -> str:
    """The queue for ``kind`` under ``base`` (the default queue name)."""
    return f"{base or _default_queue()}.{kind}"


def all_queues(base: str | None = None) -> list[str]:
    """Every queue a worker serving all kinds consumes (the default queue first)."""
    base = base or _default_queue()
    return [base, *(queue_name(kind, base) for kind in KINDS)]


def sync_kind(trigger: str | None, follow_up: bool = False) -> str:
    """Intake/webhook-triggered syncs are inbound work (a customer waits for the credit);
    a follow-up of a run with more work than one pass is bulk; everything else is a sync."""
    if follow_up:
        return BULK
    if trigger in ("webhook", "intake"):
        return INBOUND
    return SYNC


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any):
    """Celery router (``task_routes``). Read at publish time, so a process that changes its
    default queue (tests, benchmarks) routes every kind under the new name."""
    kind = TASK_KINDS.get(name)
    if kind is None:
        return None  # the default queue
    if name == "connector.tasks.sync_connection":
        kwargs = kwargs or {}
        kind = sync_kind(kwargs.get("trigger"), bool(kwargs.get("follow_up")))
    return {"queue": queue_name(kind)}


def _default_queue() -> str:
    # Not at the top: config/settings.py imports this module, before the Celery app exists.
    from config.celery_app import app

    return app.conf.task_default_queue or "celery"
