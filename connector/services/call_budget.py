"""A daily call budget shared by every worker process: one database row per key and day,
spent with a conditional UPDATE (so concurrent workers never overspend). Same interface as
`returns.platforms.returngo.client.DailyCallBudget`, which only counts within one process; the
limit and the write reserve come from the platform's registry entry (`daily_call_limit`)."""

from __future__ import annotations

import hashlib

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from returns.platforms.errors import BudgetExhausted

from ..models.budget import PlatformCallBudget


def budget_key(platform: str, api_key: str) -> str:
    return hashlib.sha256(f"{platform}:{api_key}".encode()).hexdigest()[:64]


class SharedDailyCallBudget:
    def __init__(self, key: str, limit: int, write_reserve: int = 0, label: str = "Platform"):
        self.key = key
        self.label = label
        self.limit = limit
        self.write_reserve = min(write_reserve, limit)

    def _today(self):
        return timezone.now().date()

    @property
    def used(self) -> int:
        row = PlatformCallBudget.objects.filter(key=self.key, day=self._today()).first()
        return row.used if row else 0

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    def spend(self, write: bool = False) -> None:
        day = self._today()
        ceiling = self.limit if write else self.limit - self.write_reserve
        try:
            with transaction.atomic():
                PlatformCallBudget.objects.get_or_create(key=self.key, day=day)
        except IntegrityError:
            pass  # another worker created today's row first
        spent = PlatformCallBudget.objects.filter(key=self.key, day=day, used__lt=ceiling).update(
            used=F("used") + 1
        )
        if not spent:
            kind = "write" if write else "read"
            raise BudgetExhausted(
                f"{self.label} daily call budget spent ({ceiling}/{self.limit} for {kind}s)"
            )
