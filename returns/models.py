"""Platform-neutral RMA store: returns (`Rma`), their aggregated lines and their refunds.

Owned here: what a return *is*, whatever platform it came from. Not here: Brightpearl bindings
and sync decisions (connector). An RMA belongs to a connection through the swappable
`settings.RETURNS_CONNECTION_MODEL`, so this app never imports the connector.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

from . import lifecycle, outcomes
from .platforms import registry

MONEY = {"max_digits": 14, "decimal_places": 4}


# Constants for code (`PlatformKind.GENERIC`), built from the platform registry; the fields'
# choices are the registry itself (`registry.choices`, a callable: a platform registered later
# is valid without a migration).
PlatformKind = models.TextChoices(
    "PlatformKind", [(spec.kind.upper(), (spec.kind, spec.label)) for spec in registry.platforms()]
)


class RmaStatus(models.TextChoices):
    REQUESTED = lifecycle.REQUESTED, "Requested"
    APPROVED = lifecycle.APPROVED, "Approved"
    CREDITED = lifecycle.CREDITED, "Credited in Brightpearl"
    PARTIALLY_RECEIVED = lifecycle.PARTIALLY_RECEIVED, "Partially received"
    RECEIVED = lifecycle.RECEIVED, "Received"
    PROCESSED = lifecycle.PROCESSED, "Processed on the platform"
    FLAGGED = lifecycle.FLAGGED, "Flagged"
    REJECTED = lifecycle.REJECTED, "Rejected"
    CANCELLED = lifecycle.CANCELLED, "Cancelled"
    CLOSED = lifecycle.CLOSED, "Closed"


class Rma(models.Model):
    """One return as the platform described it, plus the neutral lifecycle status."""

    connection = models.ForeignKey(
        settings.RETURNS_CONNECTION_MODEL, on_delete=models.CASCADE, related_name="rmas"
    )
    platform = models.CharField(max_length=20, choices=registry.choices)
    external_id = models.CharField("platform return ID", max_length=64)
    rma_number = models.CharField("RMA number", max_length=64, blank=True)
    order_id = models.CharField(
        "platform order ID", max_length=64, blank=True, help_text="The shop's order ID."
    )
    order_name = models.CharField("order name", max_length=64, blank=True, db_index=True)
    destination_id = models.CharField("destination ID", max_length=64, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    customer_email = models.CharField(max_length=254, blank=True)

    status = models.CharField(
        max_length=20, choices=RmaStatus, default=RmaStatus.REQUESTED, db_index=True
    )
    furthest_status = models.CharField(
        "furthest milestone",
        max_length=20,
        choices=RmaStatus,
        default=RmaStatus.REQUESTED,
        help_text="Highest main-line status ever reached; resumed when a flag is cleared.",
    )
    platform_status = models.CharField("platform status", max_length=64, blank=True)
    platform_created_at = models.DateTimeField(null=True, blank=True)
    platform_updated_at = models.DateTimeField(null=True, blank=True, db_index=True)

    totals = models.JSONField(
        default=dict, blank=True, help_text="The platform's totals, as decimal strings."
    )
    raw = models.JSONField("raw platform payload", default=dict, blank=True)
    payload_hash = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="Fingerprint of the last platform payload taken in: an unchanged one is "
        "skipped without a write.",
    )

    flagged = models.BooleanField(default=False, db_index=True)
    flag_reason = models.TextField(blank=True)
    problems = models.TextField(
        blank=True, help_text="Why the platform's data failed validation, one reason per line."
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "RMA"
        verbose_name_plural = "RMAs"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "platform", "external_id"],
                name="unique_rma_per_connection_platform",
            )
        ]
        indexes = [models.Index(fields=["connection", "status"], name="rma_connection_status")]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} RMA {self.rma_number or self.external_id}"

    @property
    def refunded_total(self) -> Decimal:
        return sum((r.amount for r in self.refunds.all()), Decimal(0))


class RmaLine(models.Model):
    """One SKU of a return, aggregated from the platform's per-unit lines."""

    rma = models.ForeignKey(Rma, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField("SKU", max_length=128, blank=True, db_index=True)
    title = models.CharField(max_length=255, blank=True)
    order_line_id = models.CharField(
        "order line ID", max_length=64, blank=True, help_text="The original order's line."
    )
    quantity = models.PositiveIntegerField(default=0)
    unit_price = models.DecimalField(**MONEY, default=Decimal(0))
    discount = models.DecimalField(**MONEY, default=Decimal(0), help_text="Total for the line.")
    tax = models.DecimalField(**MONEY, default=Decimal(0), help_text="Total for the line.")
    tax_included = models.BooleanField(default=False, help_text="Unit price includes tax.")
    restocking_fee = models.DecimalField(**MONEY, default=Decimal(0))
    return_fee = models.DecimalField(**MONEY, default=Decimal(0))
    shipment_fee = models.DecimalField(**MONEY, default=Decimal(0))
    reason = models.TextField(blank=True)
    outcome = models.CharField(max_length=64, blank=True)
    keep_item = models.BooleanField(
        "keep item (no goods expected)",
        default=False,
        help_text="The customer keeps the item (returnless): credited and processed without "
        "waiting for a receipt.",
    )
    platform_line_ids = models.JSONField(
        "platform line IDs", default=list, blank=True, help_text="One per returned unit."
    )
    quantity_received = models.PositiveIntegerField(default=0)
    quantity_restocked = models.PositiveIntegerField(
        default=0, help_text="Received into sellable (non-quarantine) stock."
    )

    class Meta:
        verbose_name = "RMA line"
        ordering = ["id"]
        indexes = [
            # Lines with units still in quarantine: a few at any time, however long the history.
            models.Index(
                fields=["rma"],
                condition=models.Q(quantity_received__gt=models.F("quantity_restocked")),
                name="rmaline_in_quarantine",
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku or '(no SKU)'}"

    @property
    def line_total(self) -> Decimal:
        return (
            self.unit_price * self.quantity
            - self.discount
            + (Decimal(0) if self.tax_included else self.tax)
        )


class Refund(models.Model):
    """Money the platform paid back, tracked apart from the RMA status."""

    rma = models.ForeignKey(Rma, on_delete=models.CASCADE, related_name="refunds")
    external_id = models.CharField("platform refund ID", max_length=128)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, blank=True)
    method = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(
        max_length=20,
        choices=outcomes.CHOICES,
        default=outcomes.ORIGINAL_PAYMENT,
        help_text="What the customer got: money back, store credit, a gift card or an exchange "
        "(the platform's name for it is in `method`).",
    )
    shop_amount = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        help_text="The same refund in the shop's currency, when the platform gives it.",
    )
    shop_currency = models.CharField(max_length=3, blank=True)
    reference = models.CharField(
        max_length=128,
        blank=True,
        help_text="Exchange order or gift card, as the platform names it.",
    )
    refunded_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=32, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    # Set once the ERP side has taken the refund on (the connector's payment binding exists:
    # from then on that binding says what became of it). Never cleared. The refunds a sync
    # must look at for the first time are the few not yet bound (a partial index), so the
    # refund step's cost does not grow with every refund ever recorded.
    bound = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["rma", "external_id"], name="unique_refund_per_rma")
        ]
        indexes = [
            models.Index(
                fields=["rma"],
                condition=models.Q(bound=False, amount__gt=0),
                name="refund_not_bound",
            )
        ]

    def __str__(self) -> str:
        return f"Refund {self.external_id}: {Decimal(self.amount or 0):.2f} {self.currency}"
