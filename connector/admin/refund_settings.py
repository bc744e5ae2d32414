"""The connection's refund settings, inline on the connection page: a bank account per currency
and what each refund outcome (store credit, gift card, exchange, a bonus) becomes."""

from django.contrib import admin

from ..forms import RefundRowsFormSet, outcome_form_for, refund_bank_form_for
from ..models import OutcomeMapping, RefundBankAccount


class BankAccountsFormSet(RefundRowsFormSet):
    kind = "bank_accounts"


class OutcomeMappingsFormSet(RefundRowsFormSet):
    kind = "outcome_mappings"


class RefundBankAccountInline(admin.TabularInline):
    """Checked against Brightpearl as typed, with the rest of the connection, before saving."""

    model = RefundBankAccount
    formset = BankAccountsFormSet
    extra = 0
    fields = ("currency", "nominal_code")
    verbose_name = "refund bank account for a currency"
    verbose_name_plural = (
        "Refund bank accounts per currency (a currency not listed is paid from the refund "
        "method code only if that bank account is in the same currency)"
    )

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["form"] = refund_bank_form_for(obj)
        return super().get_formset(request, obj, **kwargs)


class OutcomeMappingInline(admin.TabularInline):
    model = OutcomeMapping
    formset = OutcomeMappingsFormSet
    extra = 0
    fields = ("outcome", "treatment", "payment_method_code")
    verbose_name_plural = (
        "Refund outcomes (money back is always paid from the bank for its currency; an outcome "
        "not listed is noted on the credit, never paid from the bank)"
    )

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["form"] = outcome_form_for(obj)
        return super().get_formset(request, obj, **kwargs)
