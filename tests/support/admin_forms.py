"""Management-form data for the connection page's inlines, for tests that post that form."""


def empty_inlines(*prefixes: str) -> dict[str, str]:
    """No rows in each named inline (its related_name is the prefix)."""
    fields = {
        "TOTAL_FORMS": "0",
        "INITIAL_FORMS": "0",
        "MIN_NUM_FORMS": "0",
        "MAX_NUM_FORMS": "1000",
    }
    return {f"{prefix}-{name}": value for prefix in prefixes for name, value in fields.items()}


# The refund-settings inlines (per-currency bank accounts, outcome mappings), left empty.
REFUND_INLINES = empty_inlines("refund_bank_accounts", "outcome_mappings")
