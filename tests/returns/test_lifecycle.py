"""The state-mapping table and the never-backwards rule, as tables."""

import pytest

from returns import lifecycle as lc
from returns.lifecycle import map_platform_status, resolve

MAPPING = [
    ("loop", "open", lc.APPROVED),
    ("loop", "review", lc.FLAGGED),
    ("loop", "needs review", lc.FLAGGED),
    ("loop", "closed", lc.CLOSED),
    ("loop", "cancelled", lc.CANCELLED),
    ("loop", "expired", lc.CANCELLED),
    ("loop", "OPEN", lc.APPROVED),
    ("loop", "mystery", None),
    ("returngo", "Pending", lc.REQUESTED),
    ("returngo", "Approved", lc.APPROVED),
    ("returngo", "Received", lc.APPROVED),
    ("returngo", "Validated", lc.APPROVED),
    ("returngo", "Done", lc.CLOSED),
    ("returngo", "Rejected", lc.REJECTED),
    ("returngo", "Canceled", lc.CANCELLED),
    ("returngo", "", None),
    ("generic", "declined", lc.REJECTED),
    ("nope", "open", None),
]


@pytest.mark.parametrize(("platform", "raw", "expected"), MAPPING)
def test_platform_status_mapping(platform, raw, expected):
    assert map_platform_status(platform, raw) == expected


# (current, furthest, incoming) → (status, furthest)
RESOLVE = [
    # new RMA
    (None, None, lc.APPROVED, lc.APPROVED, lc.APPROVED),
    (None, None, lc.FLAGGED, lc.FLAGGED, lc.REQUESTED),
    (None, None, None, lc.REQUESTED, lc.REQUESTED),
    # main line only moves forward
    (lc.REQUESTED, lc.REQUESTED, lc.APPROVED, lc.APPROVED, lc.APPROVED),
    (lc.CREDITED, lc.CREDITED, lc.APPROVED, lc.CREDITED, lc.CREDITED),
    (lc.RECEIVED, lc.RECEIVED, lc.REQUESTED, lc.RECEIVED, lc.RECEIVED),
    (lc.RECEIVED, lc.RECEIVED, lc.PARTIALLY_RECEIVED, lc.RECEIVED, lc.RECEIVED),
    (lc.PARTIALLY_RECEIVED, lc.PARTIALLY_RECEIVED, lc.RECEIVED, lc.RECEIVED, lc.RECEIVED),
    (lc.APPROVED, lc.APPROVED, lc.CREDITED, lc.CREDITED, lc.CREDITED),
    # unknown platform status keeps what we have
    (lc.CREDITED, lc.CREDITED, None, lc.CREDITED, lc.CREDITED),
    # processed is final
    (lc.PROCESSED, lc.PROCESSED, lc.CANCELLED, lc.PROCESSED, lc.PROCESSED),
    (lc.PROCESSED, lc.PROCESSED, lc.CLOSED, lc.PROCESSED, lc.PROCESSED),
    (lc.PROCESSED, lc.PROCESSED, lc.FLAGGED, lc.PROCESSED, lc.PROCESSED),
    # cancelled / rejected from the platform win before goods arrive …
    (lc.APPROVED, lc.APPROVED, lc.CANCELLED, lc.CANCELLED, lc.APPROVED),
    (lc.CREDITED, lc.CREDITED, lc.CANCELLED, lc.CANCELLED, lc.CREDITED),
    (lc.REQUESTED, lc.REQUESTED, lc.REJECTED, lc.REJECTED, lc.REQUESTED),
    (lc.FLAGGED, lc.APPROVED, lc.CANCELLED, lc.CANCELLED, lc.APPROVED),
    # … but not after
    (lc.RECEIVED, lc.RECEIVED, lc.CANCELLED, lc.RECEIVED, lc.RECEIVED),
    (
        lc.PARTIALLY_RECEIVED,
        lc.PARTIALLY_RECEIVED,
        lc.REJECTED,
        lc.PARTIALLY_RECEIVED,
        lc.PARTIALLY_RECEIVED,
    ),
    (lc.FLAGGED, lc.RECEIVED, lc.CANCELLED, lc.FLAGGED, lc.RECEIVED),
    # closed wins over all but processed
    (lc.RECEIVED, lc.RECEIVED, lc.CLOSED, lc.CLOSED, lc.RECEIVED),
    (lc.APPROVED, lc.APPROVED, lc.CLOSED, lc.CLOSED, lc.APPROVED),
    # flagged wins over the main line; a platform "open" does not clear it
    (lc.CREDITED, lc.CREDITED, lc.FLAGGED, lc.FLAGGED, lc.CREDITED),
    (lc.FLAGGED, lc.CREDITED, lc.APPROVED, lc.FLAGGED, lc.CREDITED),
    # … but connector progress while flagged is remembered
    (lc.FLAGGED, lc.CREDITED, lc.RECEIVED, lc.FLAGGED, lc.RECEIVED),
    # a platform reopen after a platform ending resumes at the furthest milestone
    (lc.CANCELLED, lc.CREDITED, lc.APPROVED, lc.CREDITED, lc.CREDITED),
    (lc.REJECTED, lc.REQUESTED, lc.REQUESTED, lc.REQUESTED, lc.REQUESTED),
    (lc.CLOSED, lc.APPROVED, lc.FLAGGED, lc.FLAGGED, lc.APPROVED),
    (lc.CANCELLED, lc.APPROVED, lc.CLOSED, lc.CLOSED, lc.APPROVED),
    # a connector milestone does not revive a platform-cancelled return
    (lc.CANCELLED, lc.APPROVED, lc.CREDITED, lc.CANCELLED, lc.CREDITED),
]


@pytest.mark.parametrize(("current", "furthest", "incoming", "status", "new_furthest"), RESOLVE)
def test_resolve_never_moves_backwards(current, furthest, incoming, status, new_furthest):
    transition = resolve(current, incoming, furthest)
    assert (transition.status, transition.furthest) == (status, new_furthest)


def test_every_status_pair_is_handled_and_processed_is_final():
    for current in lc.ALL_STATUSES:
        for incoming in lc.ALL_STATUSES:
            result = resolve(current, incoming, lc.APPROVED).status
            assert result in lc.ALL_STATUSES
            if current == lc.PROCESSED:
                assert result == lc.PROCESSED
            if current in lc.RANK and incoming in lc.RANK:
                assert lc.RANK[result] >= lc.RANK[current]


def test_clear_flag_resumes_furthest():
    assert lc.clear_flag(lc.FLAGGED, lc.RECEIVED) == lc.RECEIVED
    assert lc.clear_flag(lc.FLAGGED, None) == lc.APPROVED
    assert lc.clear_flag(lc.CREDITED, lc.CREDITED) == lc.CREDITED


def test_unknown_incoming_status_raises():
    with pytest.raises(ValueError):
        resolve(lc.APPROVED, "teleported", lc.APPROVED)
