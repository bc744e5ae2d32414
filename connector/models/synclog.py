"""Sync logs: every run and (with the sync engine) every item within it."""

from django.db import models


class SyncRun(models.Model):
    class Trigger(models.TextChoices):
        BEAT = "beat", "Schedule"
        WEBHOOK = "webhook", "Webhook"
        INTAKE = "intake", "Intake API"
        ADMIN = "admin", "Admin"
        COMMAND = "command", "Command"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partly failed"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="sync_runs"
    )
    trigger = models.CharField(max_length=10, choices=Trigger, default=Trigger.BEAT)
    status = models.CharField(max_length=10, choices=Status, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Renewed while the run is alive (connector/services/leases.py): a "running" row whose
    # heartbeat went quiet died with its worker, whatever its trigger.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # A backfill's run: it holds no run lease, so a sync taking the lease must not close it
    # (services/sync.py); only its lapsed heartbeat says it was lost.
    backfill_job = models.ForeignKey(
        "connector.BackfillJob",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="runs",
    )
    counts = models.JSONField(default=dict, blank=True)
    brightpearl_requests = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["connection", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.connection} {self.get_trigger_display()} run {self.pk}: {self.status}"


class SyncEvent(models.Model):
    """One item within a run: what was done to which RMA, and why it succeeded or not."""

    class Kind(models.TextChoices):
        INTAKE = "intake", "Intake"
        CREDIT = "credit", "Sales credit"
        RECEIPT = "receipt", "Receipt"
        REFUND = "refund", "Refund"
        PROCESS = "process", "Process on platform"
        FLAG = "flag", "Flag on platform"
        GOODS_IN = "goods_in", "Goods-in note"
        CLOSE = "close", "Close credit"
        DUPLICATE = "duplicate", "Duplicate in Brightpearl"
        RETRY = "retry", "Retry by staff"
        ENDED = "ended", "Return ended after its credit"
        ADJUST = "adjust", "Return edited after its credit"

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        FLAGGED = "flagged", "Flagged"

    run = models.ForeignKey(
        SyncRun, on_delete=models.CASCADE, related_name="events", null=True, blank=True
    )
    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="sync_events"
    )
    kind = models.CharField(max_length=10, choices=Kind)
    outcome = models.CharField(max_length=10, choices=Outcome)
    rma = models.ForeignKey(
        "returns.Rma",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sync_events",
        verbose_name="RMA",
    )
    rma_number = models.CharField("RMA number", max_length=64, blank=True, db_index=True)
    order_number = models.CharField(max_length=64, blank=True, db_index=True)
    credit_id = models.PositiveBigIntegerField(
        "sales credit ID", null=True, blank=True, db_index=True
    )
    message = models.TextField(blank=True)
    brightpearl_ruid = models.CharField("Brightpearl request ID", max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["connection", "kind", "outcome"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_outcome_display()}: {self.rma_number}"
