"""Bindings: the link between a neutral record and the Brightpearl document made for it.

A binding is what makes "exactly once" hold. It is created before any write to Brightpearl and
says whether an earlier attempt may have reached Brightpearl (state ``attempting``), so a retry
searches Brightpearl first instead of posting again.
"""

from django.db import models


class BindingState(models.TextChoices):
    PENDING = "pending", "Not attempted"
    ATTEMPTING = "attempting", "Attempted — may exist in Brightpearl"
    CREATED = "created", "Created"
    FAILED = "failed", "Failed (Brightpearl refused it)"
    BLOCKED = "blocked", "Blocked (RMA flagged, nothing created)"


class ExactlyOnceFields(models.Model):
    """What connector.services.exactly_once needs on every binding: the state, and when the
    last write that may have reached Brightpearl was sent (its lease counts from then)."""

    account_key = models.CharField(
        "Brightpearl account",
        max_length=96,
        db_index=True,
        help_text="datacentre/account code: Brightpearl IDs are unique only within one account.",
    )
    state = models.CharField(
        max_length=12, choices=BindingState, default=BindingState.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    attempt_owner = models.CharField(max_length=64, blank=True)
    attempt_started_at = models.DateTimeField(
        "last write sent at",
        null=True,
        blank=True,
        help_text="When the last write that may have reached Brightpearl was sent; until its "
        "lease ends no new write is sent for this record.",
    )
    last_error = models.TextField(blank=True)
    duplicates_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class SalesCredit(ExactlyOnceFields):
    """The Brightpearl sales credit made for one RMA."""

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="sales_credits"
    )
    rma = models.OneToOneField(
        "returns.Rma", on_delete=models.CASCADE, related_name="sales_credit", verbose_name="RMA"
    )
    external_ref = models.CharField(
        "external reference",
        max_length=64,
        unique=True,
        help_text="Stable key sent as the credit's externalRef; how we find it again.",
    )
    customer_ref = models.CharField("customer reference", max_length=64, blank=True)
    parent_order_id = models.PositiveBigIntegerField(
        "original order ID", null=True, blank=True, db_index=True
    )
    order_number = models.CharField(max_length=64, blank=True, db_index=True)
    credit_id = models.PositiveBigIntegerField(
        "sales credit ID", null=True, blank=True, db_index=True
    )
    warehouse_id = models.PositiveIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    adopted = models.BooleanField(
        default=False,
        help_text="Found already in Brightpearl (lost answer or another integration).",
    )
    row_map = models.JSONField(
        "credit rows", default=dict, blank=True, help_text="RMA line ID → credit row ID."
    )
    planned_rows = models.JSONField(
        default=list, blank=True, help_text="Rows as sent: RMA line, externalRef, product, units."
    )
    order_row_units = models.JSONField(
        default=dict, blank=True, help_text="Original order row ID → units this credit returns."
    )
    order_row_money = models.JSONField(
        default=dict,
        blank=True,
        help_text="Original order row ID → [net, tax] this credit returns (so the last return "
        "of a row takes exactly what is left of it, to the cent).",
    )
    released_units = models.JSONField(
        default=dict,
        blank=True,
        help_text="RMA line ID → units released from quarantine to sellable stock since receipt.",
    )
    received_via_goods_in = models.BooleanField(
        default=False, help_text="We created the goods-in note (return processed elsewhere)."
    )
    platform_flag_reason = models.TextField(
        blank=True, help_text="The last reason sent to the platform; not re-sent unchanged."
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account_key", "credit_id"], name="one_binding_per_account_credit"
            )
        ]
        indexes = [
            models.Index(fields=["account_key", "parent_order_id"], name="credit_account_parent"),
            # The duplicate check's "anything written since its last look?" (services/
            # duplicates.py) reads a range of recent rows, not every credit ever made.
            models.Index(fields=["connection", "updated_at"], name="credit_connection_updated"),
            # The receipt step's candidates: credits still waiting for the warehouse are few,
            # however many were processed before.
            models.Index(
                fields=["connection"],
                condition=models.Q(state="created", processed_at__isnull=True),
                name="credit_awaiting_receipt",
            ),
        ]

    def __str__(self) -> str:
        rma = self.rma.rma_number or self.rma.external_id
        order = f" (order {self.order_number})" if self.order_number else ""
        return f"Sales credit {self.credit_id or '(none yet)'} for {rma}{order}"


class RefundPayment(ExactlyOnceFields):
    """The Brightpearl customer payment (PAYMENT) recording one platform refund."""

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="refund_payments"
    )
    refund = models.OneToOneField(
        "returns.Refund", on_delete=models.CASCADE, related_name="payment"
    )
    sales_credit = models.ForeignKey(SalesCredit, on_delete=models.CASCADE, related_name="payments")
    transaction_ref = models.CharField(
        max_length=64, unique=True, help_text="Deterministic: Brightpearl refuses a second use."
    )
    payment_method_code = models.CharField(max_length=36, blank=True)
    payment_id = models.PositiveBigIntegerField(null=True, blank=True)
    # The plan, fixed (under a lock of the credit) before anything is written, so a retry
    # sends the same and another refund of the credit counts it: see services/refund_outcomes.
    treatment = models.CharField(
        max_length=20,
        blank=True,
        help_text="bank, payment_method or note: how this refund was booked.",
    )
    amount = models.DecimalField(
        "amount recorded",
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="In the credit's currency, capped at what was left of the credit's total.",
    )
    currency = models.CharField(max_length=3, blank=True)
    bonus = models.DecimalField(
        "above the credit's total",
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Never paid: noted on the credit or held for staff, as configured.",
    )
    note_id = models.PositiveBigIntegerField("credit note ID", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account_key", "payment_id"], name="one_binding_per_account_payment"
            )
        ]
        indexes = [  # the duplicate check's look at what was written since (see SalesCredit)
            models.Index(fields=["connection", "updated_at"], name="payment_connection_updated")
        ]

    def __str__(self) -> str:
        refund = self.refund
        return (
            f"Payment {self.payment_id or '(none yet)'} for refund {refund.external_id} "
            f"({refund.amount:.2f} {refund.currency})".replace(" )", ")")
        )


class CreditChange(ExactlyOnceFields):
    """One change to a credit after it was made, because the return changed on the platform:
    ``cancel`` (moved to the connection's cancelled status with a note, or only noted) or
    ``adjust`` (rows changed to match an edited return). Unique per (credit, key), so a
    repeated or redelivered platform change is the same change, applied once; the state, lease
    and search-before-writing-again are `exactly_once`'s, as for credits and payments."""

    class Kind(models.TextChoices):
        CANCEL = "cancel", "Return ended: cancel the credit"
        ADJUST = "adjust", "Return edited: adjust the credit"

    connection = models.ForeignKey(
        "connector.Connection", on_delete=models.CASCADE, related_name="credit_changes"
    )
    sales_credit = models.ForeignKey(SalesCredit, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=12, choices=Kind)
    key = models.CharField(
        max_length=80, help_text="What this change is for: 'cancel', or the edited lines' hash."
    )
    summary = models.TextField(blank=True, help_text="What the change does, in words.")
    planned = models.JSONField(
        default=dict, blank=True, help_text="Adjust: the credit's rows as they should end up."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sales_credit", "key"], name="one_change_per_credit_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_state_display()}) on {self.sales_credit}"
