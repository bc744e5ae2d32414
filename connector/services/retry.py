"""Staff retries: put failed or blocked items back in the queue and run a sync."""

from django.db import transaction

from returns.intake import clear_flag
from returns.models import Rma

from ..models import BindingState, RefundPayment, SalesCredit, SyncRun


def retry_items(rma_ids) -> set[int]:
    """Reset what failed for these RMAs (credits searched for before any new POST), clear
    connector flags, and enqueue one sync per connection after commit. Returns connection IDs."""
    from ..tasks import enqueue_sync

    connection_ids: set[int] = set()
    with transaction.atomic():
        for rma in Rma.objects.filter(pk__in=set(rma_ids)).select_for_update():
            connection_ids.add(rma.connection_id)
            SalesCredit.objects.filter(
                rma=rma, state__in=[BindingState.FAILED, BindingState.BLOCKED]
            ).update(
                state=BindingState.ATTEMPTING,
                attempt_owner="",
                last_error="",
                platform_flag_reason="",
            )
            RefundPayment.objects.filter(refund__rma=rma, state=BindingState.FAILED).update(
                state=BindingState.ATTEMPTING, last_error=""
            )
            if rma.flagged:
                clear_flag(rma)
    enqueue_sync(connection_ids, SyncRun.Trigger.ADMIN)
    return connection_ids
