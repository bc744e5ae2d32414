"""Admin for inbound webhooks: the read-only event log (with "Reprocess selected") and the
Connection actions that manage Brightpearl subscriptions.

The Connection actions are methods of the `WebhookSubscriptionActions` mixin, which
`ConnectionAdmin` inherits. Messages never show the webhook secret (URIs are redacted).
"""

from django.contrib import admin, messages
from django.db import transaction
from django.utils.text import Truncator

from brightpearl import BrightpearlError

from ..models import WebhookEvent
from ..services import subscriptions
from .permissions import RolePermissionsMixin


def _error(request, connection, exc) -> None:
    messages.error(
        request,
        f"{connection.name}: Brightpearl error: {subscriptions.redact(str(exc), connection)}",
    )


class WebhookSubscriptionActions:
    """Connection actions that manage the Brightpearl subscriptions (a `ConnectionAdmin` mixin)."""

    @admin.action(description="Register Brightpearl webhooks", permissions=["operate"])
    def register_brightpearl_webhooks(self, request, queryset):
        for connection in queryset:
            try:
                result = subscriptions.register(connection)
            except BrightpearlError as exc:
                _error(request, connection, exc)
                continue
            endpoint = subscriptions.redact(subscriptions.webhook_uri(connection), connection)
            messages.success(
                request, f"{connection.name}: webhooks registered ({result.summary()}) → {endpoint}"
            )

    @admin.action(description="Send test webhook", permissions=["operate"])
    def send_test_webhook(self, request, queryset):
        for connection in queryset:
            try:
                outcome = subscriptions.send_test(connection)
            except BrightpearlError as exc:
                _error(request, connection, exc)
                continue
            ok = outcome.arrived is not None and outcome.arrived.status != "rejected"
            level = messages.SUCCESS if ok else messages.ERROR
            messages.add_message(request, level, f"{connection.name}: {outcome.message}")

    @admin.action(description="Rotate webhook secret (and re-register)", permissions=["configure"])
    def rotate_webhook_secret(self, request, queryset):
        for connection in queryset:
            try:
                result = subscriptions.rotate_secret(connection)
            except BrightpearlError as exc:
                messages.error(
                    request,
                    f"{connection.name}: the secret was rotated but registering failed "
                    f"({subscriptions.redact(str(exc), connection)}); run "
                    "“Register Brightpearl webhooks” again.",
                )
                continue
            messages.success(
                request,
                f"{connection.name}: new webhook secret; re-registered ({result.summary()}).",
            )


@admin.register(WebhookEvent)
class WebhookEventAdmin(RolePermissionsMixin, admin.ModelAdmin):
    list_display = (
        "received_at",
        "connection",
        "source",
        "event",
        "resource_ids_short",
        "status",
        "attempts",
        "note",
    )
    list_filter = ("connection", "source", "event", "status", "received_at")
    search_fields = ("resource_ids",)
    search_help_text = "Resource IDs as sent, e.g. 1-5,99"
    date_hierarchy = "received_at"
    list_select_related = ("connection",)
    raw_id_fields = ("connection", "duplicate_of")
    show_full_result_count = False
    actions = ["reprocess_selected"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="resource IDs")
    def resource_ids_short(self, obj):
        return Truncator(obj.resource_ids).chars(40)

    @admin.display(description="outcome / error")
    def note(self, obj):
        return Truncator(obj.error).chars(120)

    @admin.action(description="Reprocess selected", permissions=["operate"])
    def reprocess_selected(self, request, queryset):
        """Back to `received` and queued after commit — the same pipeline as a delivery.
        Rejected events have nothing parsed to process and are left alone."""
        from ..services.inbound import reprocess
        from ..tasks import enqueue_events

        pks = list(queryset.values_list("pk", flat=True))
        with transaction.atomic():
            ids = reprocess(pks)
            enqueue_events(ids)
        skipped = len(pks) - len(ids)
        messages.info(
            request,
            f"Reprocessing queued for {len(ids)} event(s)."
            + (f" {skipped} rejected event(s) skipped." if skipped else ""),
        )
