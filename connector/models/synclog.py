"""Sync logs: every run and (with the sync engine) every item within it."""

from django.db import models


class SyncRun(models.Model):
    class Trigger(models.TextChoices):
        BEAT = "beat", "Schedule"
        WEBHOOK = "webhook", "Webhook"
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
    counts = models.JSONField(default=dict, blank=True)
    brightpearl_requests = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["connection", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.connection} {self.get_trigger_display()} run {self.pk}: {self.status}"
