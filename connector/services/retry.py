"""Staff retries: put what failed back in the queue, say exactly what was queued, and never
erase a flag whose cause nobody has looked at.

* A credit Brightpearl refused, or one blocked because planning found a problem (a SKU not on
  the order, more units than sold, no original order), goes back to be attempted; a refused
  write is searched for before anything is posted again (`exactly_once.retry_requested`).
* The flag raised by that planning problem stays while the next run re-checks it: if the
  problem is gone the credit is made and the flag cleared; if not, it is flagged again, with
  the reason, in the log. (Clearing it here would not help: the platform, which was told of
  the flag, would report the return as flagged again, with no reason on our side.)
* Any other flag (set on the platform, by a receipt problem, or by hand) stays until staff say
  it is resolved (`clear_flags=True`, the admin's "clear flag and retry").
* Every RMA touched gets a "retry" event naming who asked and what was queued.

The caller enqueues the syncs (`RetryOutcome.connection_ids`); services never import tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from returns.intake import clear_flag
from returns.models import Rma

from ..models import BindingState, RefundPayment, SalesCredit, SyncEvent
from . import exactly_once

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome
# Said in the retry event when staff cleared a flag (services/problems.py closes the flag on it).
FLAG_CLEARED = "flag cleared"


@dataclass
class RetryOutcome:
    connection_ids: set[int] = field(default_factory=set)
    queued: list[str] = field(default_factory=list)  # "RMA 1003: sales credit"
    left: list[str] = field(default_factory=list)  # "RMA 1004: still flagged (…)"


def retry_items(rma_ids, *, user: str = "", clear_flags: bool = False) -> RetryOutcome:
    outcome = RetryOutcome()
    with transaction.atomic():
        for rma in Rma.objects.filter(pk__in=set(rma_ids)).select_for_update().order_by("pk"):
            _retry_one(rma, outcome, user=user, clear_flags=clear_flags)
    return outcome


def _retry_one(rma: Rma, outcome: RetryOutcome, *, user: str, clear_flags: bool) -> None:
    label = f"RMA {rma.rma_number or rma.external_id}"
    what: list[str] = []
    credit = SalesCredit.objects.filter(rma=rma).first()
    flag_from_planning = (
        rma.flagged
        and credit is not None
        and credit.state == BindingState.BLOCKED
        and credit.last_error == rma.flag_reason
    )
    if credit is not None and exactly_once.retry_requested(credit):
        what.append(
            "sales credit (its flag is re-checked)" if flag_from_planning else "sales credit"
        )
    for payment in RefundPayment.objects.filter(
        refund__rma=rma, state=BindingState.FAILED
    ).select_related("refund"):
        if exactly_once.retry_requested(payment):
            what.append(f"payment for refund {payment.refund.external_id}")
    if rma.flagged and not flag_from_planning:
        if clear_flags:
            reason = rma.flag_reason
            clear_flag(rma)
            what.append(f"{FLAG_CLEARED} ({reason})")
        else:
            outcome.left.append(
                f"{label}: still flagged ({rma.flag_reason}); use “clear flag and retry” "
                "once the cause is resolved"
            )
    if not what:
        if not rma.flagged:
            outcome.left.append(f"{label}: nothing had failed")
        return
    outcome.connection_ids.add(rma.connection_id)
    outcome.queued.append(f"{label}: {', '.join(what)}")
    SyncEvent.objects.create(
        connection_id=rma.connection_id,
        kind=Kind.RETRY,
        outcome=Outcome.SUCCEEDED,
        rma=rma,
        rma_number=rma.rma_number[:64],
        order_number=rma.order_name[:64],
        credit_id=credit.credit_id if credit else None,
        message=f"Retry requested{f' by {user}' if user else ''}: {', '.join(what)}.",
    )
