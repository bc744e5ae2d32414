"""Leases: "one at a time" that survives a crash.

A lease is a row update that succeeds only when the lease is free, expired, or already held by
the same owner. The owner is the Celery task ID, which a redelivered task keeps: a task killed
mid-run (SIGKILL, lost worker) resumes its own lease at once, while an overlapping run with
another ID is refused. Works the same on PostgreSQL and SQLite.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import Connection

# Longer than a task's hard time limit: a live run is always killed before its lease expires.
RUN_LEASE = timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 720) + 180)


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
        .update(sync_lease_owner=owner, sync_lease_expires_at=now + RUN_LEASE)
    )


def release_run_lease(connection_id: int, owner: str) -> None:
    Connection.objects.filter(pk=connection_id, sync_lease_owner=owner).update(
        sync_lease_owner="", sync_lease_expires_at=None
    )
