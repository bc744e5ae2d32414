"""Calls spent per platform API key per UTC day (ReturnGO allows 2,000 a day per key)."""

from django.db import models


class PlatformCallBudget(models.Model):
    key = models.CharField(
        max_length=64, help_text="A hash of the platform and API key (one key, many stores)."
    )
    day = models.DateField()
    used = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "day"], name="one_budget_row_per_key_and_day")
        ]

    def __str__(self) -> str:
        return f"{self.key[:8]}… {self.day}: {self.used} calls"
