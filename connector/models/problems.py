"""Open problems and staff alerts: what needs a person, as opposed to the log of what happened.

A `Problem` is one item that failed or was flagged — one step of one return (its sales credit,
its receipt, its refund…), or one connection's run as a whole. It stays **open** until the same
item later succeeds, or staff dismiss it with a note; repeats of the same failure update it
instead of adding rows. The sync log (`SyncEvent`) stays the history; this is the to-do list.
`connector/services/problems.py` keeps it in step with the log.

`AlertSettings` says who hears about new problems of one connection (e-mail and/or a webhook
such as a Slack incoming webhook), and how often at most (a digest every N minutes).
"""

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from .synclog import SyncEvent

# The steps a problem can be about: each kind of sync-log item, and a run as a whole.
STEPS = [*SyncEvent.Kind.choices, ("run", "Sync run")]


class Problem(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved (succeeded later)"
        DISMISSED = "dismissed", "Dismissed by staff"

    class Outcome(models.TextChoices):
        FAILED = "failed", "Failed"
        FLAGGED = "flagged", "Flagged (needs staff)"

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="problems"
    )
    rma = models.ForeignKey(
        "returns.Rma",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="connector_problems",
        verbose_name="RMA",
    )
    item = models.CharField(
        max_length=100, help_text="What failed: one step of one return, or a connection's run."
    )
    kind = models.CharField("step", max_length=10, choices=STEPS)
    outcome = models.CharField(max_length=10, choices=Outcome)
    state = models.CharField(max_length=10, choices=State, default=State.OPEN, db_index=True)
    message = models.TextField(blank=True, help_text="The latest failure, as the log says it.")
    rma_number = models.CharField("RMA number", max_length=64, blank=True)
    order_number = models.CharField(max_length=64, blank=True)
    credit_id = models.PositiveBigIntegerField("sales credit ID", null=True, blank=True)
    first_event = models.ForeignKey(
        "connector.SyncEvent", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_event = models.ForeignKey(
        "connector.SyncEvent", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    occurrences = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField(db_index=True)
    last_seen_at = models.DateTimeField()
    retried_at = models.DateTimeField("retry asked at", null=True, blank=True)
    retry_note = models.TextField("retry", blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=150, blank=True)
    resolution = models.TextField(blank=True, help_text="What closed it (success or staff note).")
    alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-pk"]
        indexes = [models.Index(fields=["connection", "state", "outcome"])]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "item"],
                condition=Q(state="open"),
                name="one_open_problem_per_item",
            )
        ]

    def __str__(self) -> str:
        subject = f"RMA {self.rma_number}" if self.rma_number else "connection"
        return f"{subject}: {self.kind} {self.outcome} ({self.state})"


class AlertSettings(models.Model):
    """Who is told about new problems of one connection, and how often at most."""

    connection = models.OneToOneField(
        "connector.Connection", on_delete=models.CASCADE, related_name="alert_settings"
    )
    email_to = models.CharField(
        "e-mail to",
        max_length=500,
        blank=True,
        help_text="Addresses, separated by commas. Sent with the server's mail settings.",
    )
    webhook_url = models.URLField(
        "webhook URL",
        max_length=500,
        blank=True,
        help_text="e.g. a Slack incoming webhook (https://hooks.slack.com/…). The message is "
        'posted as JSON {"text": …}.',
    )
    on_flagged = models.BooleanField("when a return is flagged", default=True)
    on_failed = models.BooleanField("when an item fails", default=True)
    digest_minutes = models.PositiveIntegerField(
        "at most every (minutes)",
        default=15,
        validators=[MinValueValidator(1, "Enter at least 1 minute.")],
        help_text="New problems are collected into one message at most this often.",
    )
    last_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)

    class Meta:
        verbose_name = "alerts"
        verbose_name_plural = "alerts"

    def __str__(self) -> str:
        return f"Alerts for {self.connection}"
