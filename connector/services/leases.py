"""Leases: "one run of a connection at a time" that survives a crash in about a minute.

A lease is a row update that succeeds only when the lease is free, expired, or already held by
the same owner. The owner is the Celery task ID, which a redelivered task keeps: a task killed
mid-run resumes its own lease at once, while an overlapping run with another ID is refused.
Works the same on PostgreSQL and SQLite.

The lease is short (`RUN_LEASE_SECONDS`, default 90 s) and renewed by a heartbeat while the
run is alive, so a long run keeps it and a run whose worker — or whole host — died frees it
within a minute and a half, instead of holding the merchant until a task time limit passes.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db import connection as db_connection
from django.db.models import Q
from django.utils import timezone

from ..models import Connection

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


class LeaseHeartbeat:
    """Renews a run lease every third of its length from a background thread, for as long as
    the `with` block runs (a run stuck in a slow Brightpearl call still keeps its lease; a
    killed process stops renewing, and the lease lapses)."""

    def __init__(self, connection_id: int, owner: str) -> None:
        self.connection_id, self.owner = connection_id, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="run-lease-heartbeat", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        every = max(0.2, settings.RUN_LEASE_SECONDS / 3)
        try:
            while not self._stop.wait(every):
                try:
                    renew_run_lease(self.connection_id, self.owner)
                except DatabaseError:
                    logger.warning(
                        "could not renew the run lease of connection %s", self.connection_id
                    )
        finally:
            db_connection.close()  # this thread's own database connection
