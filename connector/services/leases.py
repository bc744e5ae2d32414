"""Leases: "one run of a connection at a time" that survives a crash in about a minute.

A lease is a row update that succeeds only when the lease is free, expired, or already held by
the same owner. The owner is the Celery task ID, which a redelivered task keeps: a task killed
mid-run resumes its own lease at once, while an overlapping run with another ID is refused.
Works the same on PostgreSQL and SQLite.

The lease is short (`RUN_LEASE_SECONDS`, default 60 s) and renewed by a heartbeat while the
run is alive, so a long run keeps it and a run whose worker — or whole host — died frees it
within a minute, instead of holding the merchant until a task time limit passes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db import connection as db_connection
from django.db.models import Q
from django.utils import timezone

from ..models import Connection, SyncRun

logger = logging.getLogger("connector.sync")


def run_lease() -> timedelta:
    return timedelta(seconds=settings.RUN_LEASE_SECONDS)


def acquire_run_lease(connection_id: int, owner: str) -> bool:
    now = timezone.now()
    return bool(
        Connection.objects.filter(pk=connection_id)
        .filter(
            Q(sync_lease_owner="")
            | Q(sync_lease_owner=owner)
            | Q(sync_lease_expires_at__isnull=True)
            | Q(sync_lease_expires_at__lt=now)
        )
        .update(sync_lease_owner=owner, sync_lease_expires_at=now + run_lease())
    )


def renew_run_lease(connection_id: int, owner: str) -> bool:
    """Push the expiry forward while we still own it; False if we lost it."""
    return bool(
        Connection.objects.filter(pk=connection_id, sync_lease_owner=owner).update(
            sync_lease_expires_at=timezone.now() + run_lease()
        )
    )


def release_run_lease(connection_id: int, owner: str) -> None:
    Connection.objects.filter(pk=connection_id, sync_lease_owner=owner).update(
        sync_lease_owner="", sync_lease_expires_at=None
    )


def lease_expires_at(connection_id: int) -> datetime | None:
    return (
        Connection.objects.filter(pk=connection_id)
        .values_list("sync_lease_expires_at", flat=True)
        .first()
    )


class Heartbeat:
    """Calls `renew` every `every` seconds from a background thread while the `with` block
    runs (a killed process stops renewing: whatever it holds lapses)."""

    def __init__(self, renew: Callable[[], object], every: float, name: str = "heartbeat"):
        self.renew, self.every, self.name = renew, max(0.2, every), name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    self.renew()
                except DatabaseError:
                    logger.warning("%s: could not renew", self.name)
        finally:
            db_connection.close()  # this thread's own database connection


class LeaseHeartbeat(Heartbeat):
    """Renews a run lease every third of its length while the `with` block runs (a run stuck
    in a slow Brightpearl call still keeps its lease; a killed process stops renewing, and the
    lease lapses). With `run_id`, the SyncRun row's `heartbeat_at` is renewed too (at once as
    well): a "running" row whose heartbeat went quiet for a lease's length died with its
    worker (`stale_runs`), whatever its trigger."""

    def __init__(self, connection_id: int | None, owner: str, run_id: int | None = None) -> None:
        self.connection_id, self.owner, self.run_id = connection_id, owner, run_id
        super().__init__(self._renew, settings.RUN_LEASE_SECONDS / 3, "run-lease-heartbeat")

    def __enter__(self) -> LeaseHeartbeat:
        self._renew_run()
        super().__enter__()
        return self

    def _renew(self) -> None:
        if self.connection_id is not None:
            renew_run_lease(self.connection_id, self.owner)
        self._renew_run()

    def _renew_run(self) -> None:
        if self.run_id is not None:
            SyncRun.objects.filter(pk=self.run_id, status=SyncRun.Status.RUNNING).update(
                heartbeat_at=timezone.now()
            )


def run_heartbeat(run_id: int) -> LeaseHeartbeat:
    """Keeps a run that holds no connection lease (a webhook's, a backfill's) visibly alive."""
    return LeaseHeartbeat(None, "", run_id=run_id)


def stale_runs(connection_id: int | None = None):
    """ "Running" rows whose heartbeat is older than a lease: their worker is gone, since a
    live run renews it every third of a lease — a sync's, a webhook's, a backfill's alike.
    Rows that never beat (written before heartbeats) are not judged here."""
    cutoff = timezone.now() - run_lease()
    rows = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    return rows if connection_id is None else rows.filter(connection_id=connection_id)


INTERRUPTED = "Interrupted: its worker was lost; a later run resumed the work."


def close_interrupted(rows) -> int:
    """Close orphaned "running" rows as interrupted (failed, with the reason)."""
    return rows.update(
        status=SyncRun.Status.FAILED, finished_at=timezone.now(), message=INTERRUPTED
    )
