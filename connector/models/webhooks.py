"""Every inbound webhook, stored raw before anything else is done with it.

The same table serves Brightpearl (unsigned, IDs only), Loop (HMAC-signed) and ReturnGO
(secret URL): store first, verify and parse, answer fast, process after commit by re-fetching
what the event names. The payload is only ever a hint.
"""

from django.db import models


class WebhookEvent(models.Model):
    class Source(models.TextChoices):
        BRIGHTPEARL = "brightpearl", "Brightpearl"
        LOOP = "loop", "Loop Returns"
        RETURNGO = "returngo", "ReturnGO"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored"
        REJECTED = "rejected", "Rejected (malformed)"
        DUPLICATE = "duplicate", "Duplicate"

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="webhook_events"
    )
    source = models.CharField(max_length=12, choices=Source, db_index=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    # Parsed hints (never trusted: processing re-fetches the resources).
    event = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="e.g. goods-in-note.created"
    )
    resource_type = models.CharField(max_length=50, blank=True)
    resource_ids = models.TextField(
        "resource IDs", blank=True, help_text="An ID set as sent, e.g. 1-5,99."
    )
    dedupe_key = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.RECEIVED, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["connection", "source", "dedupe_key"])]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.event or '(unparsed)'} #{self.pk}"
