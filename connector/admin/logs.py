"""Admin of the sync logs and bindings: read-only lists staff search and filter, with retry
actions that queue work rather than doing it inline."""

from django.contrib import admin, messages
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from ..models import RefundPayment, SalesCredit, SyncEvent, SyncRun
from ..services.retry import retry_items
from ..tasks import enqueue_sync
from .badges import ConsoleMedia, badge, seconds
from .permissions import RolePermissionsMixin


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
        messages.success(
            request,
            "Retry queued — " + "; ".join(result.queued) + ". Its outcome shows in Open problems.",
        )
    if result.left:
        messages.warning(request, "Not retried — " + "; ".join(result.left) + ".")


retry_and_report = _retry  # what the problem list and the timeline use


class ReadOnlyAdmin(RolePermissionsMixin, admin.ModelAdmin):
    """Logs and bindings are written by the connector, never by hand."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncEvent)
class SyncEventAdmin(ConsoleMedia, ReadOnlyAdmin):
    """Failed rows red, flagged amber, times to the second, the whole message, and the RMA
    linked to its timeline."""

    list_display = (
        "when",
        "connection",
        "kind",
        "outcome_badge",
        "rma_link",
        "order_number",
        "credit_id",
        "full_message",
    )
    list_filter = ("connection", "kind", "outcome", "run__status", "created_at")
    search_fields = ("order_number", "rma_number", "credit_id")
    search_help_text = "Order number, RMA number, sales-credit ID or Brightpearl order ID"
    date_hierarchy = "created_at"
    list_select_related = ("connection",)
    raw_id_fields = ("run", "connection", "rma")
    actions = ["retry_selected", "clear_flag_and_retry"]

    @admin.display(description="When", ordering="created_at")
    def when(self, obj: SyncEvent) -> str:
        return seconds(obj.created_at)

    @admin.display(description="Outcome", ordering="outcome")
    def outcome_badge(self, obj: SyncEvent) -> str:
        return badge(obj.get_outcome_display(), obj.outcome)

    @admin.display(description="RMA", ordering="rma_number")
    def rma_link(self, obj: SyncEvent) -> str:
        if obj.rma_id is None:
            return obj.rma_number or "–"
        url = reverse("admin:returns_rma_change", args=[obj.rma_id])
        return format_html('<a href="{}">{}</a>', url, obj.rma_number or obj.rma_id)

    @admin.display(description="Message")
    def full_message(self, obj: SyncEvent) -> str:
        return format_html('<div class="console-message">{}</div>', obj.message)

    def get_search_results(self, request, queryset, search_term):
        """Order number, RMA number (exact, case-insensitive), credit ID or Brightpearl order
        ID."""
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(order_number__iexact=term) | Q(rma_number__iexact=term)
        if term.lstrip("#") != term:
            query |= Q(order_number__iexact=term.lstrip("#"))
        else:
            query |= Q(order_number__iexact=f"#{term}")
        if term.isdigit() and len(term) < 19:
            # A credit ID, or the Brightpearl order ID the messages name ("… order 102").
            number = int(term)
            query |= (
                Q(credit_id=number)
                | Q(rma__sales_credit__parent_order_id=number)
                | Q(message__iregex=rf"order {number}([^0-9]|$)")
            )
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
    search_fields = (
        "order_number",
        "customer_ref",
        "credit_id",
        "parent_order_id",
        "rma__rma_number",
    )
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
