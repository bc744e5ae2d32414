"""Keeps the open problems (`Problem`) in step with the sync log, and says what to do about each.

Fed by the log itself (post_save of `SyncEvent` and `SyncRun`, connector/signals.py), so every
step that records a failure opens a problem without knowing about problems:

* a failed or flagged event opens the problem of its item (one step of one return: "rma:12:credit";
  a connection-wide step: "connection:intake"; a return's flag, whichever step raised it:
  "rma:12:flag"), or updates the one already open;
* a later success of the same item closes it ("resolved"); a success of a later step that could
  not have happened without it closes it too (a credit made closes the return's intake problem);
* a run that failed as a whole (credentials refused, Brightpearl down) is the item
  "connection:run"; the next run that gets through closes it and every connection-wide problem
  seen before that run started;
* staff retries are noted on the open problems of the return (what was queued, by whom), so the
  problem list shows a retry and then its outcome; staff may dismiss a problem with a note.

The failure rows stay in the log (pruned on its own schedule); closing never depends on them.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..models import BindingState, Problem, RefundPayment, SyncEvent, SyncRun
from ..models.problems import STEPS
from .retry import FLAG_CLEARED

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome
RUN = "run"

# A success of the key's step closes the problems of the steps listed.
CLOSES: dict[str, tuple[str, ...]] = {
    Kind.INTAKE: (Kind.INTAKE,),
    Kind.CREDIT: (Kind.CREDIT, Kind.INTAKE, Kind.FLAG),
    Kind.RECEIPT: (Kind.RECEIPT,),
    Kind.GOODS_IN: (Kind.GOODS_IN, Kind.RECEIPT),
    Kind.PROCESS: (Kind.PROCESS, Kind.RECEIPT, Kind.FLAG, Kind.GOODS_IN),
    Kind.FLAG: (),  # sending a flag is not the flag's cause going away
    Kind.REFUND: (Kind.REFUND,),
    Kind.CLOSE: (Kind.CLOSE,),
    Kind.DUPLICATE: (Kind.DUPLICATE,),
}


def item_key(kind: str, rma_id: int | None, outcome: str = "") -> str:
    """The item a log row is about. Every flag of one return is one item ("rma:12:flag"),
    whichever step raised it: the credit step's flag and the flag sent to the platform are
    one thing for staff."""
    if outcome == Outcome.FLAGGED and rma_id:
        kind = Kind.FLAG
    return f"rma:{rma_id}:{kind}" if rma_id else f"connection:{kind}"


def note_event(event: SyncEvent) -> None:
    """Open, update or close problems for one new log row."""
    if event.kind == Kind.RETRY:
        _note_retry(event)
    elif event.outcome in (Outcome.FAILED, Outcome.FLAGGED):
        _open(
            connection_id=event.connection_id,
            item=item_key(event.kind, event.rma_id, event.outcome),
            kind=event.kind,
            outcome=event.outcome,
            message=event.message,
            at=event.created_at,
            event=event,
            rma_id=event.rma_id,
            rma_number=event.rma_number,
            order_number=event.order_number,
            credit_id=event.credit_id,
        )
    elif event.outcome == Outcome.SUCCEEDED:
        _close_after_success(event)


def note_run(run: SyncRun) -> None:
    """A run failed as a whole: open (or update) its connection's run problem. A run that got
    through closes the connection-wide problems last seen before it started."""
    if run.pk is None or run.status in (SyncRun.Status.RUNNING, SyncRun.Status.SKIPPED):
        return
    if run.status == SyncRun.Status.FAILED:
        _open(
            connection_id=run.connection_id,
            item=item_key(RUN, None),
            kind=RUN,
            outcome=Problem.Outcome.FAILED,
            message=run.message or "The sync run failed.",
            at=run.finished_at or timezone.now(),
        )
        return
    Problem.objects.filter(
        connection_id=run.connection_id,
        state=Problem.State.OPEN,
        rma__isnull=True,
        last_seen_at__lt=run.started_at,
    ).update(
        state=Problem.State.RESOLVED,
        closed_at=run.finished_at or timezone.now(),
        resolution=f"A later sync run (#{run.pk}) got through.",
    )


def _open(*, connection_id, item, kind, outcome, message, at, event=None, **fields) -> None:
    fields = {k: (v[:64] if isinstance(v, str) else v) for k, v in fields.items()}
    for _attempt in range(2):
        updated = Problem.objects.filter(
            connection_id=connection_id, item=item, state=Problem.State.OPEN
        ).update(outcome=outcome, message=message, last_seen_at=at, last_event=event, **fields)
        if updated:
            Problem.objects.filter(
                connection_id=connection_id, item=item, state=Problem.State.OPEN
            ).update(occurrences=F("occurrences") + 1)
            return
        try:
            with transaction.atomic():
                Problem.objects.create(
                    connection_id=connection_id,
                    item=item,
                    kind=kind,
                    outcome=outcome,
                    message=message,
                    opened_at=at,
                    last_seen_at=at,
                    first_event=event,
                    last_event=event,
                    **fields,
                )
            return
        except IntegrityError:
            continue  # another worker opened it a moment ago: update that one


def _close_after_success(event: SyncEvent) -> None:
    kinds = CLOSES.get(event.kind, ())
    if not kinds:
        return
    if event.kind == Kind.REFUND and event.rma_id is not None:
        # One return may have several refunds: a payment still refused keeps the problem open.
        if RefundPayment.objects.filter(
            refund__rma_id=event.rma_id, state=BindingState.FAILED
        ).exists():
            return
    items = [item_key(kind, event.rma_id) for kind in kinds]
    Problem.objects.filter(
        connection_id=event.connection_id, item__in=items, state=Problem.State.OPEN
    ).update(
        state=Problem.State.RESOLVED,
        closed_at=event.created_at,
        resolution=f"{event.get_kind_display()} succeeded: {event.message}",
    )


def _note_retry(event: SyncEvent) -> None:
    if event.rma_id is None:
        return
    open_ = Problem.objects.filter(rma_id=event.rma_id, state=Problem.State.OPEN)
    if FLAG_CLEARED in event.message:
        # Staff said the flag's cause is resolved: the flag itself is no longer a problem.
        open_.filter(outcome=Problem.Outcome.FLAGGED).exclude(kind=Kind.CREDIT).update(
            state=Problem.State.DISMISSED,
            closed_at=event.created_at,
            resolution=event.message,
        )
    open_.update(retried_at=event.created_at, retry_note=event.message)


def dismiss(problems, *, user: str, note: str) -> int:
    """Staff close problems by hand; the note says why (required)."""
    note = (note or "").strip()
    if not note:
        raise ValueError("Say why the problem can be dismissed (a note is required).")
    return problems.filter(state=Problem.State.OPEN).update(
        state=Problem.State.DISMISSED,
        closed_at=timezone.now(),
        closed_by=user[:150],
        resolution=note,
    )


# --- what to do, in a warehouse person's words ---------------------------------------------------

_ADVICE: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    # (step, outcome, any of these words in the message, advice); first match wins.
    (
        RUN,
        "failed",
        ("refused", "401", "403", "credential", "token"),
        "The connector cannot log in to Brightpearl. Ask an administrator to check the "
        "connection's token and press “Check”; nothing is lost meanwhile.",
    ),
    (
        RUN,
        "failed",
        (),
        "The last sync stopped before it finished. It runs again by itself; if this stays "
        "open for an hour, tell an administrator.",
    ),
    (
        Kind.CREDIT,
        "flagged",
        ("not on original order",),
        "The customer returned an item that was not on their order. Compare the parcel with "
        "the order in Brightpearl; once the return is corrected on the returns platform, press "
        "“Retry”.",
    ),
    (
        Kind.CREDIT,
        "flagged",
        ("returned but",),
        "The return asks for more units than the order sold. Check the quantities on the "
        "returns platform, correct them, then press “Retry”.",
    ),
    (
        Kind.CREDIT,
        "flagged",
        ("not found",),
        "The original order is not in Brightpearl (yet). Check the order number; when the "
        "order is there, press “Retry”.",
    ),
    (
        Kind.CREDIT,
        "failed",
        ("busy", "did not confirm", "throttl"),
        "Brightpearl was busy. The connector tries again by itself; nothing to do unless this "
        "stays open for an hour.",
    ),
    (
        Kind.CREDIT,
        "failed",
        (),
        "Brightpearl would not accept the sales credit (the reason is below). Usually a "
        "setting: ask an administrator to press “Check” on the connection, then press “Retry”.",
    ),
    (
        Kind.FLAG,
        "",
        (),
        "What arrived in the warehouse does not match the return. Count the parcel, correct the "
        "goods-in note in Brightpearl or the return on the platform, then press “Clear flag and "
        "retry”.",
    ),
    (
        Kind.RECEIPT,
        "",
        (),
        "The connector could not read what the warehouse received. It tries again at the next "
        "sync; if this stays open, tell an administrator.",
    ),
    (
        Kind.PROCESS,
        "",
        (),
        "The returns platform would not mark the return processed. Open it on the platform to "
        "see why, fix it there, then press “Retry”.",
    ),
    (
        Kind.REFUND,
        "failed",
        ("busy", "did not confirm", "throttl"),
        "Brightpearl was busy while recording the refund. The connector tries again by itself.",
    ),
    (
        Kind.REFUND,
        "",
        (),
        "The refund could not be recorded as a payment in Brightpearl. Ask an administrator to "
        "check the refund bank account (refund method code), then press “Retry”.",
    ),
    (
        Kind.INTAKE,
        "flagged",
        (),
        "The platform sent a return the connector cannot use (the reason is below). Fix the "
        "return on the platform; it is read again by itself.",
    ),
    (
        Kind.INTAKE,
        "",
        (),
        "The connector could not read returns from the platform. Ask an administrator to check "
        "the platform API key; it tries again at the next sync.",
    ),
    (
        Kind.DUPLICATE,
        "",
        (),
        "Brightpearl holds two credits for one return. Open both in Brightpearl and cancel the "
        "extra one so it is not refunded twice.",
    ),
)


def advice(problem: Problem) -> str:
    """What to do about a problem, in plain words."""
    text = problem.message.lower()
    for kind, outcome, words, said in _ADVICE:
        if kind != problem.kind or (outcome and outcome != problem.outcome):
            continue
        if words and not any(word in text for word in words):
            continue
        return said
    return (
        "Read the message below. When its cause is fixed press “Retry”; if nothing needs doing, "
        "dismiss it with a note."
    )


def step_label(kind: str) -> str:
    return dict(STEPS).get(kind, kind)


def retry_outcome(problem: Problem) -> str:
    """What came of the last retry staff asked for."""
    if problem.retried_at is None:
        return ""
    if problem.state == Problem.State.RESOLVED:
        return "succeeded"
    if problem.state == Problem.State.DISMISSED:
        return "closed by staff"
    if problem.last_seen_at > problem.retried_at:
        return "failed again"
    return "waiting for the next sync"
