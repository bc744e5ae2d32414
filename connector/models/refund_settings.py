"""How a connection books what customers got back: the bank account per currency for money
refunded to the original payment method, and what store credit, gift cards, exchanges and a
bonus above the credit's total become in Brightpearl (connector.services.refund_outcomes)."""

from django.core.exceptions import ValidationError
from django.db import models

from returns import outcomes
from returns.currencies import is_currency

from .connection import Connection, refund_method_code_validator


class RefundBankAccount(models.Model):
    """Refunds in this currency are paid from this bank account. A currency with no row uses the
    connection's refund method code only if that bank account is in the same currency
    (Brightpearl says which); otherwise the refund is refused with the reason."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="refund_bank_accounts"
    )
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. USD.")
    nominal_code = models.CharField(
        "bank account nominal code",
        max_length=4,
        validators=[refund_method_code_validator],
        help_text="The 4-digit nominal code of a bank account in that currency.",
    )

    class Meta:
        verbose_name = "refund bank account for a currency"
        verbose_name_plural = "refund bank accounts per currency"
        ordering = ["currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "currency"], name="one_refund_bank_per_currency"
            )
        ]

    def __str__(self) -> str:
        return f"{self.currency} → {self.nominal_code}"

    def clean(self) -> None:
        self.currency = (self.currency or "").strip().upper()
        self.nominal_code = (self.nominal_code or "").strip()
        if not is_currency(self.currency):
            raise ValidationError(
                {"currency": "Enter a 3-letter ISO 4217 currency code, e.g. USD."}
            )

    def save(self, *args, **kwargs) -> None:
        self.currency = (self.currency or "").strip().upper()
        self.nominal_code = (self.nominal_code or "").strip()
        super().save(*args, **kwargs)


class Treatment(models.TextChoices):
    NOTE = "note", "Record nothing; note it on the credit"
    PAYMENT_METHOD = "payment_method", "Customer payment with this payment method (not a bank)"
    HOLD = "hold", "Hold it for staff; record nothing"


BONUS = "bonus"
MAPPED_OUTCOMES = [
    (outcomes.STORE_CREDIT, "Store credit"),
    (outcomes.GIFT_CARD, "Gift card"),
    (outcomes.EXCHANGE, "Exchange"),
    (BONUS, "Bonus above the credit's total"),
]
# What each outcome may become; the first is the default when a connection maps nothing.
ALLOWED = {
    outcomes.STORE_CREDIT: (Treatment.NOTE, Treatment.PAYMENT_METHOD),
    outcomes.GIFT_CARD: (Treatment.NOTE, Treatment.PAYMENT_METHOD),
    outcomes.EXCHANGE: (Treatment.NOTE, Treatment.PAYMENT_METHOD),
    BONUS: (Treatment.NOTE, Treatment.HOLD),
}


class OutcomeMapping(models.Model):
    """What one refund outcome becomes in Brightpearl. Money back to the original payment method
    is always a customer payment from the bank account for its currency; the rest default to
    "note it on the credit" — never money out of the bank."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="outcome_mappings"
    )
    outcome = models.CharField(max_length=20, choices=MAPPED_OUTCOMES)
    treatment = models.CharField(max_length=20, choices=Treatment, default=Treatment.NOTE)
    payment_method_code = models.CharField(
        "payment method code",
        max_length=36,
        blank=True,
        help_text="For 'customer payment': a Brightpearl payment method whose account is a "
        "liability or clearing account (e.g. GIFTCARD), never the refund bank.",
    )

    class Meta:
        verbose_name = "refund outcome mapping"
        ordering = ["outcome"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "outcome"], name="one_mapping_per_outcome"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} → {self.get_treatment_display()}"

    def clean(self) -> None:
        self.payment_method_code = (self.payment_method_code or "").strip().upper()
        allowed = ALLOWED.get(self.outcome, ())
        if self.outcome and self.treatment not in allowed:
            names = " or ".join(f"“{Treatment(t).label}”" for t in allowed)
            raise ValidationError({"treatment": f"{self.get_outcome_display()} can be {names}."})
        if self.treatment == Treatment.PAYMENT_METHOD and not self.payment_method_code:
            raise ValidationError(
                {"payment_method_code": "Enter the payment method code to record it with."}
            )
        if self.treatment != Treatment.PAYMENT_METHOD and self.payment_method_code:
            raise ValidationError(
                {"payment_method_code": "Only a customer payment uses a payment method code."}
            )

    def save(self, *args, **kwargs) -> None:
        self.payment_method_code = (self.payment_method_code or "").strip().upper()
        super().save(*args, **kwargs)
