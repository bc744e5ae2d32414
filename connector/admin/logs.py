"""Admin of the sync logs and bindings: read-only lists staff search and filter, with retry
actions that queue work rather than doing it inline."""

from django.contrib import admin, messages
from django.db.models import Q

from ..models import CreditChange, RefundPayment, SalesCredit, SyncEvent, SyncRun
from ..services.retry import retry_items
from ..tasks import enqueue_sync
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
        "treatment",
        "amount",
        "currency",
        "bonus",
        "payment_id",
        "note_id",
        "transaction_ref",
        "payment_method_code",
        "attempts",
        "last_error",
    )
    list_filter = ("connection", "state", "treatment")
    search_fields = ("transaction_ref", "payment_id", "sales_credit__credit_id")
    list_select_related = ("connection", "refund")
    raw_id_fields = ("connection", "refund", "sales_credit")


@admin.register(CreditChange)
class CreditChangeAdmin(ReadOnlyAdmin):
    """Credits changed after they were made: a return ended (cancel) or edited (adjust)."""

    list_display = (
        "sales_credit",
        "connection",
        "kind",
        "state",
        "attempts",
        "updated_at",
        "summary",
        "last_error",
    )
    list_filter = ("connection", "kind", "state")
    search_fields = ("sales_credit__credit_id", "sales_credit__rma__rma_number", "summary")
    list_select_related = ("connection", "sales_credit")
    raw_id_fields = ("connection", "sales_credit")
