"""Which bank account pays a refund in a given currency, and with which payment method.

A connection names bank accounts per currency (`RefundBankAccount`); a currency without one
falls back to the connection's refund method code — but only when Brightpearl says that bank
account is in the same currency. A USD refund is never paid from a GBP bank account because a
payment method happens to list USD against it.
"""

from __future__ import annotations

from brightpearl import PaymentMethodNotFoundError

from . import reference
from .context import SyncContext


def configured_banks(connection) -> dict[str, str]:
    """currency → bank nominal code, as configured per currency."""
    return {b.currency.upper(): b.nominal_code for b in connection.refund_bank_accounts.all()}


def bank_currency(ctx: SyncContext, code: str) -> str | None:
    return reference.cached(
        ctx.connection, "bank-currency", code, lambda: ctx.client.bank_account_currency(code)
    )


def bank_for(ctx: SyncContext, currency: str) -> str:
    """The bank nominal code for refunds in ``currency``; PaymentMethodNotFoundError (with the
    reason staff need) when there is none in that currency."""
    banks = ctx.cache.setdefault("refund_banks", configured_banks(ctx.connection))
    currency = currency.upper()
    code = banks.get(currency) or ctx.connection.refund_method_code
    source = (
        "the bank account configured for it"
        if currency in banks
        else "the connection's refund method code"
    )
    actual = bank_currency(ctx, code)
    if actual and actual != currency:
        raise PaymentMethodNotFoundError(
            f"No {currency} bank account for this refund: {code} ({source}) is a {actual} bank "
            f"account. Add a {currency} bank account under the connection's “refund bank "
            "accounts per currency”."
        )
    return code


def payment_method_for_bank(ctx: SyncContext, currency: str) -> tuple[str, str]:
    """(payment method code, bank nominal code) for a refund to the original payment method."""
    code = bank_for(ctx, currency)
    cache = ctx.cache.setdefault("payment_methods", {})
    key = f"{code}:{currency}"
    if key not in cache:
        cache[key] = reference.cached(
            ctx.connection,
            "payment-method",
            key,
            lambda: ctx.client.resolve_payment_method_code(code, currency),
        )
    return cache[key], code


def forget(ctx: SyncContext, code: str, currency: str) -> None:
    """A payment method Brightpearl refused may have been deactivated or re-coded."""
    reference.forget(ctx.connection, "payment-method", f"{code}:{currency}")
    ctx.cache.get("payment_methods", {}).pop(f"{code}:{currency}", None)
