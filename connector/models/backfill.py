"""Backfill jobs: importing a connection's returns from a chosen date, with their progress.

A job is the progress staff watch (admin) and the command prints: the window already read
(`reached`), counts per outcome, and — for a dry run — what would be imported, created or
adopted. Work is done in windows of the platform's creation dates; a window is committed when
done, so a paused or restarted job resumes at the first unfinished window and counts nothing
twice (connector/services/backfill.py).
"""

from django.db import models


class BackfillJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused (rate limit; resumes by itself)"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="backfill_jobs"
    )
    since = models.DateTimeField(help_text="Import returns created on the platform from then on.")
    until = models.DateTimeField(help_text="…up to then (when the job was asked for).")
    dry_run = models.BooleanField(
        default=True, help_text="Show what would be imported, created and adopted; write nothing."
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED, db_index=True)
    reached = models.DateTimeField(
        "read up to", null=True, blank=True, help_text="Every return created before this is done."
    )
    counts = models.JSONField(default=dict, blank=True)
    committed_counts = models.JSONField(
        default=dict, blank=True, editable=False, help_text="Counts as of `reached`."
    )
    plan = models.JSONField(
        default=list, blank=True, help_text="Dry run: one line per return (the first 1,000)."
    )
    message = models.TextField(blank=True)
    brightpearl_requests = models.PositiveIntegerField(default=0)
    requested_by = models.CharField(max_length=150, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        kind = "Dry run" if self.dry_run else "Backfill"
        return f"{kind} of {self.connection} from {self.since:%Y-%m-%d} ({self.status})"

    @property
    def progress(self) -> float:
        """Share of the window read (0–1)."""
        if self.status == self.Status.SUCCEEDED:
            return 1.0
        if self.reached is None or self.until <= self.since:
            return 0.0
        done = (self.reached - self.since) / (self.until - self.since)
        return max(0.0, min(1.0, done))
