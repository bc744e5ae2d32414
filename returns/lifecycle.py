"""The neutral RMA lifecycle: its statuses, and the one rule that decides what an update may do
to an RMA's status. Each platform maps its own statuses onto these (its package's `statuses`).

Main line (rank order)::

    requested → approved → credited → partially_received → received → processed

`credited`, `partially_received`, `received` and `processed` are the connector's own
milestones (Brightpearl credit made, goods-in seen, platform told to process). Platforms only
ever map to requested / approved or to a side state:

* ``flagged``   — needs a human (Loop `review`, or the connector flagged it).
* ``rejected``, ``cancelled`` — the platform ended the return before completion.
* ``closed``    — the platform finished or closed it without us (Loop `closed`, ReturnGO `Done`).

Refunds are tracked separately (`Refund` rows), never as a status.
"""

from __future__ import annotations

from dataclasses import dataclass

from .platforms import registry

REQUESTED = "requested"
APPROVED = "approved"
CREDITED = "credited"
PARTIALLY_RECEIVED = "partially_received"
RECEIVED = "received"
PROCESSED = "processed"
FLAGGED = "flagged"
REJECTED = "rejected"
CANCELLED = "cancelled"
CLOSED = "closed"

MAIN_LINE = (REQUESTED, APPROVED, CREDITED, PARTIALLY_RECEIVED, RECEIVED, PROCESSED)
RANK = {status: rank for rank, status in enumerate(MAIN_LINE)}
SIDE_STATES = (FLAGGED, REJECTED, CANCELLED, CLOSED)
# Side states the platform ends a return with; a platform may reopen from these.
PLATFORM_ENDINGS = (REJECTED, CANCELLED, CLOSED)
# Milestones only the connector sets; a platform's "open"/"approved" never undoes them.
CONNECTOR_MILESTONES = (CREDITED, PARTIALLY_RECEIVED, RECEIVED, PROCESSED)
# Goods physically arrived: a late platform cancel/reject is recorded (raw status) but does not
# erase that fact.
GOODS_ARRIVED = (PARTIALLY_RECEIVED, RECEIVED, PROCESSED)

ALL_STATUSES = MAIN_LINE + SIDE_STATES

# --- platform status → neutral status -------------------------------------------------------
# Each platform's table lives in its package (returns/platforms/<name>/, `PlatformSpec.statuses`).
# Unknown statuses map to None: the RMA keeps its status and intake records the problem.


def map_platform_status(platform: str, platform_status: str) -> str | None:
    """The neutral status a platform status means; None when we do not know it."""
    spec = registry.find(platform)
    if spec is None:
        return None
    return spec.statuses.get((platform_status or "").strip().lower())


@dataclass(frozen=True)
class Transition:
    status: str
    furthest: str  # highest main-line status ever reached (restored when a flag is cleared)


def _max_main(a: str | None, b: str | None) -> str | None:
    candidates = [s for s in (a, b) if s in RANK]
    return max(candidates, key=RANK.__getitem__) if candidates else None


def resolve(current: str | None, incoming: str | None, furthest: str | None = None) -> Transition:
    """What the status becomes when `incoming` (a platform's mapped status, or a connector
    milestone) meets `current`. Never moves an RMA backwards:

    * main line: the higher rank wins (a platform "open" never undoes credited/received/…);
    * ``processed`` is final;
    * ``flagged`` wins over every main-line state below processed and is left only by
      `clear_flag` or a platform ending (cancel/reject/close) — a platform "open" after a flag
      does not silently clear it (that is how returns get re-flagged forever);
    * ``cancelled`` / ``rejected`` from the platform win over requested…credited and flagged,
      but not once goods arrived (received/partially_received, also while flagged);
    * ``closed`` wins over everything except processed;
    * a platform ending followed by a platform main-line status is a reopen: the RMA resumes
      at the higher of that status and the furthest milestone reached.
    """
    furthest = _max_main(furthest, current) or REQUESTED
    if current is None:
        start = incoming or REQUESTED
        return Transition(start, _max_main(start, None) or REQUESTED)
    if incoming is None or incoming == current:
        return Transition(current, furthest)
    if current == PROCESSED:
        return Transition(PROCESSED, PROCESSED)

    if incoming in RANK:
        new_furthest = _max_main(furthest, incoming)
        if current in RANK:
            return Transition(_max_main(current, incoming), new_furthest)
        if current in PLATFORM_ENDINGS and incoming not in CONNECTOR_MILESTONES:
            return Transition(_max_main(incoming, furthest), new_furthest)  # reopened
        return Transition(current, new_furthest)  # flagged (or ended): remember progress only

    if incoming == FLAGGED:
        return Transition(FLAGGED, furthest)
    if incoming in (CANCELLED, REJECTED):
        if current in GOODS_ARRIVED or furthest in GOODS_ARRIVED:
            return Transition(current, furthest)
        return Transition(incoming, furthest)
    if incoming == CLOSED:
        return Transition(CLOSED, furthest)
    raise ValueError(f"unknown neutral status {incoming!r}")


def clear_flag(current: str, furthest: str | None) -> str:
    """Staff resolved a flag: resume at the furthest main-line milestone reached."""
    if current != FLAGGED:
        return current
    return furthest if furthest in RANK else APPROVED
