"""Admin: issue a generic-intake API token for a connection, shown once.

Wired into `ConnectionAdmin` by the import at the end of `connector/admin.py`; the action name
`issue_intake_token` is listed in `ConnectionAdmin.actions`.
"""

from django.contrib import admin, messages

from .admin import ConnectionAdmin
from .intake_api.authentication import issue_intake_token
from .models import Platform


@admin.action(description="Issue intake API token", permissions=["configure"])
def issue_intake_token_action(modeladmin, request, queryset) -> None:
    """One new token per selected generic connection; the previous token stops working. The
    plain token is only ever in this one message: the database keeps its SHA-256."""
    for connection in queryset.order_by("pk"):
        if connection.platform != Platform.GENERIC:
            messages.warning(
                request,
                f"{connection.name}: no token issued — the intake API is for connections whose "
                "platform is 'Generic JSON intake API'.",
            )
            continue
        replaced = bool(connection.intake_token_hash)
        token = issue_intake_token(connection)
        messages.success(
            request,
            f"{connection.name}: intake API token {token} — copy it now, it is not shown "
            "again." + (" The previous token no longer works." if replaced else ""),
        )
        modeladmin.log_change(request, connection, "Issued a new intake API token.")


ConnectionAdmin.issue_intake_token = issue_intake_token_action
