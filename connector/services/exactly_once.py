"""Exactly once for every Brightpearl write that must not happen twice (sales credits, customer
payments, and whatever write comes next). The rules live here and nowhere else.

1. **Claim.** The binding row is locked (`select_for_update(skip_locked=True)`) and marked
   ``attempting`` with the moment the write may reach Brightpearl (``attempt_started_at``),
   committed *before* the write is sent.
2. **In flight.** A write whose answer never came (a timeout, a dropped answer, a gateway's
   502/504, a worker killed mid-request) may still be executing at Brightpearl: Brightpearl
   answers whenever it finishes, not when our client gives up. Such an attempt blocks every
   new write of that record until its lease ends — counted from when it was sent, whoever sent
   it, and longer than the client timeout plus Brightpearl's slowest answer (`write_lease`). A
   run that meets it says so and asks for a follow-up run at the lease's end.
3. **Search before writing again.** Once the lease has ended — or whenever an earlier attempt
   may have reached Brightpearl — the caller searches Brightpearl by the record's key and adopts
   what it finds; only if nothing is there does it write.
4. **Known outcomes settle at once**: created (or adopted) → ``created``; refused (4xx) →
   ``failed`` with Brightpearl's words (staff retry it); throttled (503) or never sent → back to
   ``pending``, free to go again.
5. **A spent budget is not an outcome** (`brightpearl.BudgetSpent`, issue #12): it is raised
   *before* a request is sent, so the attempt it interrupts sent nothing that may still be
   executing. `unsent` puts the record back as it was before the claim, without a lease:
   ``pending`` when nothing was ever sent, ``attempting`` (search first, no wait) when an
   earlier attempt — or an earlier part of this one — may have reached Brightpearl. A search
   made *after* a write with an unknown outcome that meets a spent budget counts as "not
   found": the write keeps its lease (`in_doubt`).

The callers (`credits.py`, `refunds.py`) do the searching and writing; this module owns the
states and the lease, so both follow the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from brightpearl import (
    BudgetSpent,
    ServerError,
    ThrottledError,
    TransportError,
    TurnOver,
    finishing,
)

from ..models import BindingState

DONE_STATES = (BindingState.CREATED, BindingState.FAILED, BindingState.BLOCKED)


def write_lease() -> timedelta:
    """How long a write that may have reached Brightpearl is treated as still in flight."""
    return timedelta(seconds=settings.CREDIT_ATTEMPT_LEASE_SECONDS)


@dataclass
class Claim:
    """The outcome of asking to write. Exactly one of the three is set:
    ``binding`` (go: search first if ``search_first``), ``wait_until`` (an earlier write may
    still be in flight) or ``done`` (nothing to do: finished, or another execution holds it)."""

    binding: Any = None
    search_first: bool = False
    wait_until: datetime | None = None
    done: bool = False
    busy: bool = False  # another execution holds the row lock right now


def claim(model: type[models.Model], pk: int, owner: str) -> Claim:
    now = timezone.now()
    with transaction.atomic():
        binding = model.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
        if binding is None:
            return Claim(busy=True)
        if binding.state in DONE_STATES:
            return Claim(binding=None, done=True)
        in_flight_until = lease_end(binding)
        if in_flight_until is not None and in_flight_until > now:
            return Claim(wait_until=in_flight_until)
        search_first = binding.state == BindingState.ATTEMPTING
        binding.state = BindingState.ATTEMPTING
        binding.attempt_owner = owner
        binding.attempt_started_at = now
        binding.attempts += 1
        binding.save(
            update_fields=["state", "attempt_owner", "attempt_started_at", "attempts", "updated_at"]
        )
    return Claim(binding=binding, search_first=search_first)


def lease_end(binding) -> datetime | None:
    """When an attempt that may have reached Brightpearl stops counting as in flight."""
    if binding.state != BindingState.ATTEMPTING or binding.attempt_started_at is None:
        return None
    return binding.attempt_started_at + write_lease()


def _update(binding, **fields) -> None:
    type(binding).objects.filter(pk=binding.pk).update(**fields)
    for name, value in fields.items():
        setattr(binding, name, value)


def succeeded(binding, **fields) -> None:
    """Created or adopted: ``fields`` names the Brightpearl ID (credit_id=…, payment_id=…)."""
    _update(
        binding,
        state=BindingState.CREATED,
        attempt_owner="",
        attempt_started_at=None,
        last_error="",
        **fields,
    )


def outcome_unknown(binding, error: BaseException) -> None:
    """The write may have been executed. If Brightpearl may *still* be executing it (no answer
    came, or a gateway gave up waiting for it), stay ``attempting`` with the lease running from
    the send, so nobody writes again until a search can decide. If Brightpearl answered (a 500),
    it has finished: the next attempt searches first and needs to wait for nothing."""
    fields: dict[str, Any] = {"last_error": str(error)[:2000], "attempt_owner": ""}
    if not may_still_be_executing(error):
        fields["attempt_started_at"] = None
    _update(binding, **fields)


def in_doubt(ctx, binding, error: BaseException) -> datetime | None:
    """A write with an unknown outcome that a search did not find: mark it (`outcome_unknown`)
    and, while Brightpearl may still be executing it, ask the run (`ctx.follow_up_at`) for a
    follow-up when its lease ends. Returns that lease end — nothing is sent again before it —
    or None when Brightpearl has finished (a plain 500): the next run searches first."""
    outcome_unknown(binding, error)
    until = lease_end(binding)
    if until is not None:
        ctx.follow_up_at(until)
    return until


def may_still_be_executing(error: BaseException) -> bool:
    """No answer at all (a read timeout, a connection dropped after sending), or a gateway's
    502/504 — the request may still be running behind it."""
    if isinstance(error, TransportError):
        return error.may_have_reached_server
    return isinstance(error, ServerError) and getattr(error, "status", None) in (502, 504)


def not_written(binding, reason: str) -> None:
    """Brightpearl certainly did not execute this write (503, never sent). Any earlier attempt
    was searched for before it (its lease had ended) and was not there: free to go again."""
    _update(
        binding,
        state=BindingState.PENDING,
        attempt_owner="",
        attempt_started_at=None,
        last_error=reason[:2000],
    )


def unsent(binding, *, sent_before: bool, turn_over: bool = False) -> None:
    """The account's budget ran out before this attempt's write was sent (`BudgetSpent`):
    nothing of it may still be executing, so no lease. ``sent_before``: an earlier attempt (the
    claim said search first) or an earlier write of this one may have reached Brightpearl —
    stay ``attempting`` so the next attempt reads Brightpearl first; else back to ``pending``."""
    _update(
        binding,
        state=BindingState.ATTEMPTING if sent_before else BindingState.PENDING,
        attempt_owner="",
        attempt_started_at=None,
        last_error=(
            "Handed on: the task's turn was over; nothing was sent."
            if turn_over
            else "Paused: the account's request budget was spent; nothing was sent."
        ),
    )


@contextmanager
def budget_pause(binding, *, sent_before: bool) -> Iterator[None]:
    """Around the reads and the write of one claimed attempt, up to the write's answer: a
    `BudgetSpent` raised inside leaves the record as `unsent` says, and goes on up (the run
    pauses and its task comes back when the budget is there). It is a unit of work
    (`brightpearl.finishing`): it does not begin once the task's turn is over (TurnOver, undone
    like a spent budget), and once begun the turn does not end inside it."""
    try:
        with finishing(begins=True):
            yield
    except BudgetSpent as exc:
        unsent(binding, sent_before=sent_before, turn_over=isinstance(exc, TurnOver))
        raise


def refused(binding, reason: str) -> None:
    """A 4xx (or a configuration problem): recorded, never retried by itself."""
    _update(
        binding,
        state=BindingState.FAILED,
        attempt_owner="",
        attempt_started_at=None,
        last_error=reason[:2000],
    )


def blocked(binding, reason: str) -> None:
    """Nothing may be written (the record's situation forbids it, e.g. goods already
    received): recorded with the reason, never retried by itself."""
    _update(
        binding,
        state=BindingState.BLOCKED,
        attempt_owner="",
        attempt_started_at=None,
        last_error=reason[:2000],
    )


def is_unknown_outcome(error: BaseException) -> bool:
    """Could this failed write have been executed by Brightpearl?"""
    if isinstance(error, ThrottledError):
        return False  # a 503 throttle answer means "not executed"
    if isinstance(error, TransportError):
        return error.may_have_reached_server
    return isinstance(error, ServerError)


def release(model: type[models.Model], owner: str) -> None:
    """A run ends: its own attempts are no longer *owned*, but a write it sent with an unknown
    outcome keeps its lease (attempt_started_at) — that is what blocks a second write."""
    model.objects.filter(state=BindingState.ATTEMPTING, attempt_owner=owner).update(
        attempt_owner=""
    )


def retry_requested(binding) -> bool:
    """Staff asked to try a failed or blocked record again. A refused write (4xx) executed
    nothing, but searching first costs one request and covers a refusal that was really a
    duplicate; a blocked record was never sent, so it is planned afresh."""
    if binding.state == BindingState.FAILED:
        _update(binding, state=BindingState.ATTEMPTING, attempt_owner="", attempt_started_at=None)
        return True
    if binding.state == BindingState.BLOCKED:
        _update(binding, state=BindingState.PENDING, attempt_owner="", attempt_started_at=None)
        return True
    return False
