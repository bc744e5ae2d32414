"""Admin for inbound webhooks: the read-only event log (with "Reprocess selected") and the
Connection actions that manage Brightpearl subscriptions.

The Connection actions are methods of the `WebhookSubscriptionActions` mixin, which
`ConnectionAdmin` inherits. Messages never show the webhook secret (URIs are redacted). The
connection's page shows its Loop/ReturnGO webhook address in full only to those who configure
connections: the platform authenticates with the secret in it (docs/security.md).
"""

from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from brightpearl import BrightpearlError
from returns.platforms import registry

from ..models import WebhookEvent
from ..services import subscriptions
from ..services.inbound import reprocess
from ..tasks import enqueue_events
from .permissions import RolePermissionsMixin


def _for_each_connection(request, queryset, call, report, *, on_error=None) -> None:
    """The subscription actions' one body: call Brightpearl for each connection, report the
    outcome, and turn a Brightpearl error into a message (the secret never shown)."""
    for connection in queryset:
        try:
            outcome = call(connection)
        except BrightpearlError as exc:
            error = subscriptions.redact(str(exc), connection)
            text = on_error(error) if on_error else f"Brightpearl error: {error}"
            messages.error(request, f"{connection.name}: {text}")
            continue
        level, text = report(connection, outcome)
        messages.add_message(request, level, f"{connection.name}: {text}")


def _registered(connection, result):
    endpoint = subscriptions.redact(subscriptions.webhook_uri(connection), connection)
    return messages.SUCCESS, f"webhooks registered ({result.summary()}) → {endpoint}"


def _tested(connection, outcome):
    ok = outcome.arrived is not None and outcome.arrived.status != "rejected"
    return (messages.SUCCESS if ok else messages.ERROR), outcome.message


def _rotated(connection, result):
    return messages.SUCCESS, f"new webhook secret; re-registered ({result.summary()})."


def platform_webhook_address(connection) -> str:
    """Where Loop/ReturnGO must send this connection's webhooks (the secret is in the path:
    the platform authenticates with it). "" for a platform that sends none."""
    spec = registry.find(connection.platform)
    if spec is None or not spec.receives_webhooks or not connection.pk:
        return ""
    path = reverse(
        "webhooks:platform", args=[connection.platform, connection.pk, connection.webhook_secret]
    )
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}"


class WebhookSubscriptionActions:
    """Connection actions that manage the Brightpearl subscriptions (a `ConnectionAdmin`
    mixin), and the webhook addresses shown on the connection's page."""

    @admin.action(description="Register Brightpearl webhooks", permissions=["operate"])
    def register_brightpearl_webhooks(self, request, queryset):
        _for_each_connection(request, queryset, subscriptions.register, _registered)

    @admin.action(description="Send test webhook", permissions=["operate"])
    def send_test_webhook(self, request, queryset):
        _for_each_connection(request, queryset, subscriptions.send_test, _tested)

    @admin.action(description="Rotate webhook secret (and re-register)", permissions=["configure"])
    def rotate_webhook_secret(self, request, queryset):
        _for_each_connection(
            request,
            queryset,
            subscriptions.rotate_secret,
            _rotated,
            on_error=lambda error: (
                f"the secret was rotated but registering failed ({error}); run "
                "“Register Brightpearl webhooks” again. Paste the new returns-platform webhook "
                "address into the platform too."
            ),
        )

    def webhook_addresses(self, request, obj) -> str:
        """The platform's webhook address in full for those who configure the connection (it
        must be pasted into Loop/ReturnGO, secret and all); masked for everyone else. The
        Brightpearl address is registered by the connector itself: always masked."""
        if obj is None or not obj.pk:
            return "Shown once the connection is saved."
        platform = platform_webhook_address(obj)
        masked = subscriptions.redact(platform, obj).replace(
            obj.webhook_secret, subscriptions.HIDDEN
        )
        rows = []
        if platform:
            label = registry.get(obj.platform).label
            if self.has_configure_permission(request):
                rows.append(
                    format_html(
                        '<p>{} webhooks (paste into {}): <code class="webhook-address">{}</code>'
                        "</p>",
                        label,
                        label,
                        platform,
                    )
                )
            else:
                rows.append(
                    format_html(
                        "<p>{} webhooks: <code>{}</code> (the full address is shown to "
                        "administrators)</p>",
                        label,
                        masked,
                    )
                )
        brightpearl = subscriptions.redact(subscriptions.webhook_uri(obj), obj)
        rows.append(
            format_html(
                "<p>Brightpearl webhooks (registered by the connector): <code>{}</code></p>",
                brightpearl,
            )
        )
        return format_html_join("", "{}", ((row,) for row in rows))


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

    def has_delete_permission(self, request, obj=None):
        return False  # the log of what arrived: nobody deletes it by hand

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
