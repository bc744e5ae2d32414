"""Sync-log housekeeping."""

from datetime import timedelta

from django.utils import timezone

from ..models import SyncRun

QUIET = (SyncRun.Status.SUCCEEDED, SyncRun.Status.SKIPPED)


def prune(*, keep_days: int, keep_failed_days: int) -> int:
    now = timezone.now()
    quiet, _ = SyncRun.objects.filter(
        status__in=QUIET, started_at__lt=now - timedelta(days=keep_days)
    ).delete()
    loud, _ = (
        SyncRun.objects.filter(started_at__lt=now - timedelta(days=keep_failed_days))
        .exclude(status=SyncRun.Status.RUNNING)
        .delete()
    )
    return quiet + loud
