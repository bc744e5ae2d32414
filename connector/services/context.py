"""What one sync run carries: the connection, its clients, the run row, counts and caches.

Every step records a SyncEvent through `record`, so staff can see each item's outcome and why.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist

from brightpearl import BrightpearlClient, BrightpearlError

from ..models import Connection, SyncEvent, SyncRun
from ..wording import dry_run_line
from .brightpearl import client_for
from .platforms import adapter_for

logger = logging.getLogger("connector.sync")

# A full collection costs ~70-100 ms in a worker: worth it after a step that handled many
# returns (its memory), not after a small sync (its latency: a webhook- or intake-driven run
# handles a few, and three collections tripled its time in bench/multi_merchant.py).
GARBAGE_AFTER_ITEMS = 100


@dataclass
class SyncContext:
    connection: Connection
    run: SyncRun | None = None
    # Identifies this execution (not the task: a redelivered task is a new execution).
    owner: str = field(default_factory=lambda: f"exec-{uuid.uuid4().hex[:16]}")
    # When a follow-up run should look again at attempts another execution left in flight.
    retry_at: datetime | None = None
    # The run failed as a whole for a reason that may pass (5xx, timeout, throttling).
    transient: bool = False
    # The account's request budget ran out: seconds until the run can go on (not slept).
    budget_retry_after: float | None = None
    # The task's turn ended (brightpearl.TurnOver): the rest is handed on, not waited for.
    turn_over: bool = False
    # Requests of the paused run this one continues (services/sync.py, `_resumed`).
    earlier_requests: int = 0
    dry_run: bool = False
    counts: Counter = field(default_factory=Counter)
    cache: dict[str, Any] = field(default_factory=dict)
    _client: BrightpearlClient | None = None
    _platform: Any = None
    platform_loaded: bool = False
    printed: list[str] = field(default_factory=list)
    # What the run's message should tell staff besides its outcome (a poll deferred, and why).
    notes: list[str] = field(default_factory=list)

    @property
    def client(self) -> BrightpearlClient:
        if self._client is None:
            self._client = client_for(self.connection)
        return self._client

    @property
    def platform(self):
        if not self.platform_loaded:
            self._platform = adapter_for(self.connection)
            self.platform_loaded = True
        return self._platform

    def follow_up_at(self, moment: datetime) -> None:
        """Ask for a follow-up run no earlier than `moment` (the latest asked for wins)."""
        self.retry_at = max(self.retry_at or moment, moment)

    @property
    def requests_made(self) -> int:
        return self._client.request_count if self._client is not None else 0

    def record(
        self,
        kind: str,
        outcome: str,
        message: str,
        *,
        rma=None,
        credit_id: int | None = None,
        error: BaseException | None = None,
    ) -> SyncEvent | None:
        self.counts[f"{kind}_{outcome}"] += 1
        if self.dry_run:
            # Printed once by the command; nothing is logged or stored (nothing is written).
            self.printed.append(dry_run_line(kind, outcome, rma.rma_number if rma else "", message))
            return None
        ruid = ""
        if isinstance(error, BrightpearlError) and error.ruid:
            ruid = str(error.ruid)
        elif self._client is not None and self._client.last_ruid:
            ruid = str(self._client.last_ruid)
        line = f"{kind} {outcome}: {rma.rma_number if rma else ''} {message}".strip()
        self.printed.append(line)
        logger.info(
            "connection %s: %s",
            self.connection.pk,
            line,
            extra={"rma": rma.rma_number if rma else ""},
        )
        if credit_id is None and rma is not None:
            binding = getattr(rma, "sales_credit", None) if _has_binding(rma) else None
            credit_id = binding.credit_id if binding else None
        return SyncEvent.objects.create(
            run=self.run,
            connection=self.connection,
            kind=kind,
            outcome=outcome,
            rma=rma,
            rma_number=(rma.rma_number if rma else "")[:64],
            order_number=(rma.order_name if rma else "")[:64],
            credit_id=credit_id,
            message=message,
            brightpearl_ruid=ruid[:64],
        )


def _has_binding(rma) -> bool:
    try:
        rma.sales_credit  # noqa: B018
    except ObjectDoesNotExist:
        return False
    return True
