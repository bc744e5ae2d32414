"""The connection's refund settings, inline on the connection page: a bank account per currency
and what each refund outcome (store credit, gift card, exchange, a bonus) becomes."""

from django.contrib import admin

from ..models import OutcomeMapping, RefundBankAccount


class RefundBankAccountInline(admin.TabularInline):
    model = RefundBankAccount
    extra = 0
    fields = ("currency", "nominal_code")
    verbose_name = "refund bank account for a currency"
    verbose_name_plural = (
        "Refund bank accounts per currency (a currency not listed is paid from the refund "
        "method code only if that bank account is in the same currency)"
    )


class OutcomeMappingInline(admin.TabularInline):
    model = OutcomeMapping
    extra = 0
    fields = ("outcome", "treatment", "payment_method_code")
    verbose_name_plural = (
        "Refund outcomes (money back is always paid from the bank for its currency; an outcome "
        "not listed is noted on the credit, never paid from the bank)"
    )
