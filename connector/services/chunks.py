"""Working a step's records a chunk at a time, so a sync run's memory follows the chunk, not
the number of records it handles (issue #11, bench/memory.py).

A step that read every credit still open at once held them all (with their returns, lines and
raw JSON) until it ended: a run handling 1,000 returns peaked at ~40 MB. `each_chunk` reads
`STEP_BATCH` rows at a time in primary-key order and lets each chunk go (collected) before the
next is read; the Brightpearl reads stay batched per chunk (200 IDs a call, as before), so the
requests per return do not grow.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from brightpearl import MAX_IDS_PER_CALL

from .context import GARBAGE_AFTER_ITEMS

# Rows per chunk: one Brightpearl ID-set call's worth, so a chunk costs no more calls than the
# same records read all at once did.
STEP_BATCH = MAX_IDS_PER_CALL


def each_chunk(query: QuerySet, handle: Callable[[list[Any]], None]) -> int:
    """Call `handle` with the query's rows, `STEP_BATCH` at a time in primary-key order, and
    return how many rows it was given. Keyset paging (each chunk starts after the last key of
    the one before): a row that leaves the query while an earlier chunk is handled (a credit
    processed) makes no later row skipped or seen twice.

    Each chunk is let go, and its garbage collected, before the next is read. A step of one
    chunk (most connections: up to 200 open credits) pays no collection here; its garbage goes
    with the step's (`sync._run_steps`) or with Python's own collector — one chunk's worth."""
    size, last, total, previous = STEP_BATCH, 0, 0, 0
    while True:
        release_garbage(previous)  # the previous chunk's, before the next is read
        chunk = list(query.filter(pk__gt=last).order_by("pk")[:size])
        if not chunk:
            return total
        handle(chunk)
        last, previous = chunk[-1].pk, len(chunk)
        del chunk  # nothing else refers to the chunk now: its garbage can go
        total += previous
        if previous < size:
            return total


def release_garbage(items: int) -> None:
    """Free what a step (or a chunk of one) that handled `items` returns left behind. Each
    return's objects refer to each other (an RMA and its credit binding, their cached relations
    and raw JSON), so they are freed only by a full collection, which a long-lived process runs
    rarely: without this a large run's memory grew by tens of KB per return it handled
    (bench/memory.py). Small steps skip it (Python's own collector frees their garbage in time,
    and a full collection costs ~70-100 ms: see GARBAGE_AFTER_ITEMS)."""
    if items >= GARBAGE_AFTER_ITEMS:
        gc.collect()
