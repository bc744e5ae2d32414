"""Connection action: issue a generic-intake API token, shown once.

A mixin of `ConnectionAdmin` (connections.py), which lists `issue_intake_token` in `actions`.
"""

from django.contrib import admin, messages

from ..intake_api.authentication import issue_intake_token
from ..models import Platform


class IntakeTokenActions:
    """The intake API's token action; the plain token exists only in the one success message."""

    @admin.action(description="Issue intake API token", permissions=["configure"])
    def issue_intake_token(self, request, queryset) -> None:
        """One new token per selected generic connection; the previous token stops working.
        The database keeps only its SHA-256."""
        for connection in queryset.order_by("pk"):
            if connection.platform != Platform.GENERIC:
                messages.warning(
                    request,
                    f"{connection.name}: no token issued — the intake API is for connections "
                    "whose platform is 'Generic JSON intake API'.",
                )
                continue
            replaced = bool(connection.intake_token_hash)
            token = issue_intake_token(connection)
            messages.success(
                request,
                f"{connection.name}: intake API token {token} — copy it now, it is not shown "
                "again." + (" The previous token no longer works." if replaced else ""),
            )
            self.log_change(request, connection, "Issued a new intake API token.")
