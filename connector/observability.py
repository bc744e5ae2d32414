"""Hooks that feed the metrics and the log context without touching the business code.

* Saved rows: a finished `SyncRun`, a new `SyncEvent` or `WebhookEvent` bump their counters
  (connector/metrics.py); a new run binds its ID and connection to the log context.
* Celery: each task binds its ID (and, for a sync, the connection) and clears the context after.
* Web: each request starts with an empty context (gunicorn reuses threads).
* Brightpearl: `brightpearl_session()` is the HTTP session the client uses; its response hook
  counts requests and 503s and binds the latest Brightpearl request ID (`ruid`).
"""

from __future__ import annotations

import requests
from celery.signals import task_postrun, task_prerun
from django.core.signals import request_started
from django.db.models.signals import post_save
from django.dispatch import receiver

from . import logging as log_context
from . import metrics
from .models import SyncEvent, SyncRun, WebhookEvent


@receiver(post_save, sender=SyncRun, dispatch_uid="connector-observe-run")
def run_saved(sender, instance: SyncRun, created: bool, **kwargs) -> None:
    if created:
        log_context.bind(run=instance.pk, connection=instance.connection_id)
    finished = instance.status != SyncRun.Status.RUNNING
    # Once per finish: a run paused for budget finishes again when it goes on (services/sync.py).
    when = (instance.finished_at or instance.started_at).timestamp()
    if finished and metrics.once(f"run:{instance.pk}:{when}"):
        metrics.incr("sync_runs", instance.trigger, instance.status)


@receiver(post_save, sender=SyncEvent, dispatch_uid="connector-observe-event")
def event_saved(sender, instance: SyncEvent, created: bool, **kwargs) -> None:
    if created:
        metrics.incr("sync_items", instance.kind, instance.outcome)


@receiver(post_save, sender=WebhookEvent, dispatch_uid="connector-observe-webhook")
def webhook_saved(sender, instance: WebhookEvent, created: bool, **kwargs) -> None:
    if created:
        metrics.incr("webhooks_received", instance.source)
        log_context.bind(connection=instance.connection_id)


@receiver(request_started, dispatch_uid="connector-log-context-request")
def request_begins(sender, **kwargs) -> None:
    log_context.reset()


@task_prerun.connect(weak=False, dispatch_uid="connector-log-context-task")
def task_begins(task_id=None, task=None, args=None, kwargs=None, **extra) -> None:
    log_context.reset()
    values = {"task": task_id}
    if task is not None and task.name == "connector.tasks.sync_connection":
        values["connection"] = (args or [None])[0] or (kwargs or {}).get("connection_id")
    log_context.bind(**values)


@task_postrun.connect(weak=False, dispatch_uid="connector-log-context-task-end")
def task_ends(**extra) -> None:
    log_context.reset()


def _brightpearl_response(response: requests.Response, *args, **kwargs) -> None:
    metrics.incr("brightpearl_requests")
    if response.status_code == 503:
        metrics.incr("brightpearl_throttled")
    ruid = response.headers.get("ruid")
    if ruid:
        log_context.bind(brightpearl_request_id=ruid)


def brightpearl_session() -> requests.Session:
    """The session every Brightpearl client of the connector uses (see services/brightpearl)."""
    session = requests.Session()
    session.hooks["response"].append(_brightpearl_response)
    return session
