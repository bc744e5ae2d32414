"""Admin: connections (with warehouse mappings inline) and read-only sync logs."""

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html, format_html_join

from .admin_permissions import RolePermissionsMixin
from .forms import ConnectionForm
from .models import Connection, RefundPayment, SalesCredit, SyncEvent, SyncRun, WarehouseMapping
from .secrets import redact, secret_state
from .services.connection_check import check_connection
from .services.retry import retry_items
from .tasks import enqueue_sync


class WarehouseMappingInline(admin.TabularInline):
    model = WarehouseMapping
    extra = 1
    fields = ("destination_id", "warehouse_id")


def _report_to_messages(request, connection, items) -> None:
    for item in items:
        level = messages.SUCCESS if item.ok else messages.ERROR
        text = redact(item.message, connection)
        messages.add_message(request, level, f"{connection.name} · {item.field}: {text}")


def _secret_state_display(name: str):
    @admin.display(description=Connection._meta.get_field(name).verbose_name)
    def display(self, obj: Connection) -> str:
        return secret_state(getattr(obj, name))

    display.__name__ = f"{name}_state"
    return display


@admin.register(Connection)
class ConnectionAdmin(RolePermissionsMixin, admin.ModelAdmin):
    form = ConnectionForm
    inlines = [WarehouseMappingInline]
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
    ]
    save_on_top = True
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
                    "close_credits",
                    "create_goods_in_when_processed_elsewhere",
                )
            },
        ),
        ("Status", {"fields": ("check_report", "last_run_summary", "created_at", "updated_at")}),
    )

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
        return f"{run.get_status_display()} · {run.started_at:%Y-%m-%d %H:%M}" if run else "—"

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
        counts = ", ".join(f"{k}: {v}" for k, v in sorted((run.counts or {}).items()))
        return (
            f"{run.get_status_display()} ({run.get_trigger_display()}) at "
            f"{run.started_at:%Y-%m-%d %H:%M:%S}; {counts or 'no items'}; "
            f"{run.brightpearl_requests} Brightpearl requests. {redact(run.message, obj)}"
        )

    def response_post_save_change(self, request, obj):
        self._check_after_save(request, obj)
        return super().response_post_save_change(request, obj)

    def response_post_save_add(self, request, obj):
        self._check_after_save(request, obj)
        return super().response_post_save_add(request, obj)

    def _check_after_save(self, request, obj: Connection) -> None:
        """Saved either way; staff see at once whether Brightpearl accepts the settings."""
        items = check_connection(obj)
        failed = [i for i in items if not i.ok]
        if failed:
            _report_to_messages(request, obj, failed)
        else:
            messages.success(request, f"{obj.name}: Brightpearl accepted every setting.")

    @admin.action(description="Check connection against Brightpearl", permissions=["operate"])
    def check_selected(self, request, queryset):
        for connection in queryset:
            _report_to_messages(request, connection, check_connection(connection))

    @admin.action(
        description="Show the platform's destinations (for warehouse mappings)",
        permissions=["operate"],
    )
    def show_destinations(self, request, queryset):
        from .services.platforms import adapter_for

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
        enqueue_sync([c.pk for c in queryset], SyncRun.Trigger.ADMIN)
        messages.info(request, f"Sync queued for {queryset.count()} connection(s).")


@admin.register(SyncRun)
class SyncRunAdmin(RolePermissionsMixin, admin.ModelAdmin):
    actions = ["run_sync_now"]
    list_display = (
        "pk",
        "connection",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "brightpearl_requests",
        "message",
    )
    list_filter = ("connection", "trigger", "status", "started_at")
    date_hierarchy = "started_at"
    list_select_related = ("connection",)
    show_full_result_count = False
    raw_id_fields = ("connection",)
    search_fields = ("message",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Run sync now (for these runs' connections)", permissions=["operate"])
    def run_sync_now(self, request, queryset):
        ids = sorted({run.connection_id for run in queryset})
        enqueue_sync(ids, SyncRun.Trigger.ADMIN)
        messages.info(request, f"Sync queued for {len(ids)} connection(s).")


def _retry(request, rma_ids, *, clear_flags: bool = False) -> None:
    """Queue the retry, then tell staff which items were queued and which were not, and why."""
    result = retry_items(rma_ids, user=request.user.get_username(), clear_flags=clear_flags)
    enqueue_sync(result.connection_ids, SyncRun.Trigger.ADMIN)
    if result.queued:
        messages.success(request, "Retry queued — " + "; ".join(result.queued) + ".")
    if result.left:
        messages.warning(request, "Not retried — " + "; ".join(result.left) + ".")


class ReadOnlyAdmin(RolePermissionsMixin, admin.ModelAdmin):
    """Logs and bindings are written by the connector, never by hand."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncEvent)
class SyncEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "connection",
        "kind",
        "outcome",
        "rma_number",
        "order_number",
        "credit_id",
        "message",
    )
    list_filter = ("connection", "kind", "outcome", "run__status", "created_at")
    search_fields = ("order_number", "rma_number", "credit_id")
    search_help_text = "Order number, RMA number or sales-credit ID"
    date_hierarchy = "created_at"
    list_select_related = ("connection",)
    raw_id_fields = ("run", "connection", "rma")
    actions = ["retry_selected", "clear_flag_and_retry"]

    def get_search_results(self, request, queryset, search_term):
        """Order number, RMA number (exact, case-insensitive) or credit ID."""
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(order_number__iexact=term) | Q(rma_number__iexact=term)
        if term.lstrip("#") != term:
            query |= Q(order_number__iexact=term.lstrip("#"))
        else:
            query |= Q(order_number__iexact=f"#{term}")
        if term.isdigit():
            query |= Q(credit_id=int(term))
        return queryset.filter(query), False

    @admin.action(description="Retry selected items", permissions=["operate"])
    def retry_selected(self, request, queryset):
        _retry(request, [e.rma_id for e in queryset if e.rma_id is not None])

    @admin.action(
        description="Clear flag and retry (the cause is resolved)", permissions=["operate"]
    )
    def clear_flag_and_retry(self, request, queryset):
        _retry(request, [e.rma_id for e in queryset if e.rma_id is not None], clear_flags=True)


@admin.register(SalesCredit)
class SalesCreditAdmin(ReadOnlyAdmin):
    list_display = (
        "rma",
        "connection",
        "state",
        "credit_id",
        "order_number",
        "parent_order_id",
        "attempts",
        "adopted",
        "processed_at",
        "last_error",
    )
    list_filter = ("connection", "state", "adopted")
    search_fields = ("order_number", "customer_ref", "credit_id", "rma__rma_number")
    list_select_related = ("connection", "rma")
    raw_id_fields = ("connection", "rma")
    actions = ["retry_selected", "clear_flag_and_retry"]

    @admin.action(description="Retry selected items", permissions=["operate"])
    def retry_selected(self, request, queryset):
        _retry(request, [b.rma_id for b in queryset])

    @admin.action(
        description="Clear flag and retry (the cause is resolved)", permissions=["operate"]
    )
    def clear_flag_and_retry(self, request, queryset):
        _retry(request, [b.rma_id for b in queryset], clear_flags=True)


@admin.register(RefundPayment)
class RefundPaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "refund",
        "connection",
        "state",
        "payment_id",
        "transaction_ref",
        "payment_method_code",
        "attempts",
        "last_error",
    )
    list_filter = ("connection", "state")
    search_fields = ("transaction_ref", "payment_id", "sales_credit__credit_id")
    list_select_related = ("connection", "refund")
    raw_id_fields = ("connection", "refund", "sales_credit")


for _name in Connection.SECRET_FIELDS:
    setattr(ConnectionAdmin, f"{_name}_state", _secret_state_display(_name))

# Webhook and intake-API admin pieces register themselves against the classes above.
from . import admin_intake, admin_thirdparty, admin_webhooks  # noqa: E402,F401,I001
