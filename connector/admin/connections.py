"""Admin of connections (with warehouse mappings inline): settings, secrets shown as their state,
and the staff actions — the webhook and intake-token actions come in as mixins."""

from django.contrib import admin, messages
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from returns.display import when

from ..forms import CheckedMappingFormSet, ConnectionForm, mapping_form_for
from ..models import Connection, WarehouseMapping
from ..secrets import redact, secret_state
from ..services.connection_check import check_connection, record_check
from ..services.platforms import adapter_for
from ..services.reference import forget_lists
from ..wording import counts_in_words
from .alerts import AlertSettingsInline
from .backfill import BackfillActions
from .intake import IntakeTokenActions
from .permissions import RolePermissionsMixin, requires
from .reconcile import ReconciliationViews
from .refund_settings import OutcomeMappingInline, RefundBankAccountInline
from .sync_now import queue_staff_syncs
from .webhooks import WebhookSubscriptionActions


class WarehouseMappingInline(admin.TabularInline):
    """Mappings picked from the platform's destinations and Brightpearl's warehouses by name;
    the formset checks the whole connection against Brightpearl before anything is saved."""

    model = WarehouseMapping
    formset = CheckedMappingFormSet
    extra = 1
    fields = ("destination_id", "warehouse_id")
    verbose_name = "warehouse mapping"
    verbose_name_plural = (
        "Warehouse mappings (returns platform destination → Brightpearl warehouse; "
        "none: the original order's warehouse)"
    )

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["form"] = mapping_form_for(obj)
        return super().get_formset(request, obj, **kwargs)


def _report_to_messages(request, connection, items) -> None:
    for item in items:
        level = messages.SUCCESS if item.ok else messages.ERROR
        text = redact(item.message, connection)
        messages.add_message(request, level, f"{connection.name} · {item.field}: {text}")


def _secret_state_display(name: str):
    @admin.display(description=Connection._meta.get_field(name).verbose_name)
    def display(self, obj: Connection) -> str:
        return secret_state(getattr(obj, name))

    display.__name__ = display.__qualname__ = f"{name}_state"
    return display


# `<secret>_state` read-only fields, one per secret field: what viewers see instead of the value.
SecretStateDisplays = type(
    "SecretStateDisplays",
    (),
    {f"{name}_state": _secret_state_display(name) for name in Connection.SECRET_FIELDS},
)


@admin.register(Connection)
class ConnectionAdmin(
    ReconciliationViews,
    BackfillActions,
    IntakeTokenActions,
    WebhookSubscriptionActions,
    SecretStateDisplays,
    RolePermissionsMixin,
    admin.ModelAdmin,
):
    form = ConnectionForm
    inlines = [
        WarehouseMappingInline,
        RefundBankAccountInline,
        OutcomeMappingInline,
        AlertSettingsInline,
    ]
    list_display = (
        "name",
        "enabled",
        "platform",
        "brightpearl_account",
        "sync_interval_minutes",
        "check_status",
        "last_run",
    )
    list_filter = ("enabled", "platform", "brightpearl_auth_mode", "last_check_ok")
    search_fields = ("name", "brightpearl_account", "platform_shop_name")
    readonly_fields = ("check_report", "last_run_summary", "created_at", "updated_at")
    actions = [
        "check_selected",
        "sync_selected_now",
        "show_destinations",
        "register_brightpearl_webhooks",
        "send_test_webhook",
        "rotate_webhook_secret",
        "issue_intake_token",
        "backfill_returns",
    ]
    save_on_top = True

    class Media:
        css = {"all": ("connector/admin.css",)}
        js = ("connector/platform_fields.js",)

    fieldsets = (
        (None, {"fields": ("name", "enabled")}),
        (
            "Brightpearl",
            {
                "fields": (
                    "brightpearl_account",
                    "brightpearl_datacentre",
                    "brightpearl_auth_mode",
                    "brightpearl_app_ref",
                    "brightpearl_account_token",
                    "brightpearl_staff_token",
                    "brightpearl_installed_integration_instance_id",
                )
            },
        ),
        (
            "Brightpearl OAuth (instance apps only)",
            {
                "classes": ("collapse",),
                "fields": (
                    "brightpearl_dev_ref",
                    "brightpearl_client_secret",
                    "brightpearl_access_token",
                    "brightpearl_refresh_token",
                    "brightpearl_token_expires_at",
                ),
            },
        ),
        (
            "Returns platform",
            {
                "fields": (
                    "platform",
                    "platform_api_key",
                    "platform_shop_name",
                    "platform_api_url",
                    "platform_webhook_secret",
                )
            },
        ),
        (
            "Sales credits and refunds",
            {
                "fields": (
                    "refund_method_code",
                    "credit_status_id",
                    "credit_channel_id",
                    "customer_ref_prefix",
                    "received_status_id",
                    "cancelled_credit_status_id",
                    "fee_nominal_code",
                )
            },
        ),
        (
            "Schedule and flows",
            {
                "fields": (
                    "sync_interval_minutes",
                    "create_credits",
                    "record_refunds",
                    "update_platform",
                    "mark_shipments_received",
                    "close_credits",
                    "create_goods_in_when_processed_elsewhere",
                )
            },
        ),
        ("Status", {"fields": ("check_report", "last_run_summary", "created_at", "updated_at")}),
    )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "webhook_addresses": self.webhook_addresses(request, obj) if obj else "",
            "can_check": self.has_operate_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        check = self.admin_site.admin_view(self.check_view)
        return [
            path("<path:object_id>/check/", check, name="connector_connection_check"),
            *super().get_urls(),
        ]

    @requires("operate")
    def check_view(self, request, object_id):
        """The "Check connection" button of the change page: checks the saved settings
        (a POST; the lists offered are reloaded)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404("No such connection.")
        forget_lists(obj)
        _report_to_messages(request, obj, check_connection(obj))
        return redirect(reverse("admin:connector_connection_change", args=[obj.pk]))

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self.has_change_permission(request, obj):
            # Read-only pages render field values: show each secret's state instead.
            return tuple(
                (
                    title,
                    {
                        **options,
                        "fields": tuple(
                            f"{f}_state" if f in Connection.SECRET_FIELDS else f
                            for f in options["fields"]
                        ),
                    },
                )
                for title, options in fieldsets
            )
        if obj is None:
            return fieldsets
        stored = [f"clear_{n}" for n in Connection.SECRET_FIELDS if getattr(obj, n)]
        if not stored:
            return fieldsets
        return (
            *fieldsets,
            ("Remove stored secrets", {"classes": ("collapse",), "fields": stored}),
        )

    @admin.display(description="check", boolean=True)
    def check_status(self, obj: Connection):
        return obj.last_check_ok

    @admin.display(description="last run")
    def last_run(self, obj: Connection):
        run = obj.sync_runs.order_by("-started_at").first()
        return f"{run.get_status_display()} · {when(run.started_at)}" if run else "—"

    @admin.display(description="last check")
    def check_report(self, obj: Connection):
        if not obj.last_check_at:
            return "Not checked yet: use the “Check connection” action."
        rows = format_html_join(
            "",
            "<li>{} <strong>{}</strong>: {}</li>",
            (
                ("✔" if i.get("ok") else "✘", i.get("field"), redact(i.get("message"), obj))
                for i in obj.last_check_report
            ),
        )
        return format_html(
            "<p>{}</p><ul>{}</ul>", f"{obj.last_check_at:%Y-%m-%d %H:%M:%S %Z}", rows
        )

    @admin.display(description="last sync run")
    def last_run_summary(self, obj: Connection):
        run = obj.sync_runs.order_by("-started_at").first()
        if run is None:
            return "No run yet."
        return (
            f"{run.get_status_display()} ({run.get_trigger_display()}) at "
            f"{when(run.started_at)}; {counts_in_words(run.counts)}; "
            f"{run.brightpearl_requests} Brightpearl requests. {redact(run.message, obj)}"
        )

    def save_related(self, request, form, formsets, change):
        """Every save button ends here: the check made before saving (by the mapping
        formset) is stored and shown; staff see at once whether Brightpearl accepts it."""
        super().save_related(request, form, formsets, change)
        obj = form.instance
        forget_lists(obj)  # the next form lists what Brightpearl holds now
        checked = [f.check_items for f in formsets if getattr(f, "check_items", None)]
        items = record_check(obj, checked[0]) if checked else check_connection(obj)
        self._report_check(request, obj, items)

    def _report_check(self, request, obj: Connection, items) -> None:
        failed = [i for i in items if not i.ok]
        if failed:
            _report_to_messages(request, obj, failed)
        else:
            messages.success(request, f"{obj.name}: Brightpearl accepted every setting.")

    @admin.action(description="Check connection against Brightpearl", permissions=["operate"])
    def check_selected(self, request, queryset):
        for connection in queryset:
            forget_lists(connection)
            _report_to_messages(request, connection, check_connection(connection))

    @admin.action(
        description="Show the platform's destinations (for warehouse mappings)",
        permissions=["operate"],
    )
    def show_destinations(self, request, queryset):
        for connection in queryset:
            platform = adapter_for(connection)
            if platform is None:
                messages.info(request, f"{connection.name}: this platform has no destinations.")
                continue
            try:
                destinations = platform.list_destinations()
            except Exception as exc:  # shown to staff, never raised
                messages.error(
                    request,
                    f"{connection.name}: could not list destinations: {redact(exc, connection)}",
                )
                continue
            mapped = {m.destination_id: m.warehouse_id for m in connection.warehouse_mappings.all()}
            listing = "; ".join(
                f"{d.id} {d.name!r}"
                + (f" → warehouse {mapped[d.id]}" if d.id in mapped else " (not mapped)")
                for d in destinations
            )
            messages.info(request, f"{connection.name}: {listing or 'no destinations'}")

    @admin.action(description="Run sync now", permissions=["operate"])
    def sync_selected_now(self, request, queryset):
        queue_staff_syncs(request, list(queryset.order_by("pk").values_list("pk", flat=True)))
