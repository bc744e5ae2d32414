"""Admin of the sync logs and bindings: read-only lists staff search and filter, with retry
actions that queue work rather than doing it inline."""

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils.html import format_html

from returns.display import money, shortened, when

from ..models import CreditChange, RefundPayment, SalesCredit, SyncEvent, SyncRun
from ..services.retry import retry_items
from ..services.timeline import brightpearl_order_url
from ..tasks import request_syncs_now
from ..wording import counts_in_words
from .badges import ConsoleMedia, badge, seconds
from .permissions import RolePermissionsMixin
from .records import RUN_TONES, rows_table
from .sync_now import queue_staff_syncs


class ReadOnlyAdmin(RolePermissionsMixin, admin.ModelAdmin):
    """Logs and bindings are written by the connector, never by hand: no add, change or
    delete button for anyone, superusers included."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RunActivityFilter(admin.SimpleListFilter):
    """A short interval makes many runs that found nothing to do: hidden unless asked for."""

    title = "activity"
    parameter_name = "activity"

    def lookups(self, request, model_admin):
        return (("some", "With activity"), ("all", "All runs, empty ones too"))

    def value(self):
        return super().value() or "some"

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        has_events = Exists(SyncEvent.objects.filter(run=OuterRef("pk")))
        return queryset.filter(has_events | ~Q(status=SyncRun.Status.SUCCEEDED))


@admin.register(SyncRun)
class SyncRunAdmin(ConsoleMedia, ReadOnlyAdmin):
    actions = ["run_sync_now"]
    list_display = (
        "started",
        "connection",
        "trigger",
        "status_badge",
        "what_happened",
        "events_link",
        "brightpearl_requests",
        "message_short",
    )
    list_filter = (RunActivityFilter, "connection", "trigger", "status", "started_at")
    date_hierarchy = "started_at"
    list_select_related = ("connection",)
    raw_id_fields = ("connection",)
    search_fields = ("message",)
    fields = (
        "connection",
        "trigger",
        "status_badge",
        "started",
        "finished",
        "what_happened",
        "events_link",
        "brightpearl_requests",
        "message",
    )
    readonly_fields = fields

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: SyncRun) -> str:
        return when(obj.started_at)

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, obj: SyncRun) -> str:
        return when(obj.finished_at)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: SyncRun) -> str:
        return badge(obj.get_status_display(), RUN_TONES.get(obj.status, "muted"))

    @admin.display(description="what happened")
    def what_happened(self, obj: SyncRun) -> str:
        return counts_in_words(obj.counts)

    @admin.display(description="events")
    def events_link(self, obj: SyncRun) -> str:
        url = reverse("admin:connector_syncevent_changelist")
        return format_html('<a href="{}?run__id__exact={}">Events of this run</a>', url, obj.pk)

    @admin.display(description="message")
    def message_short(self, obj: SyncRun) -> str:
        return shortened(obj.message, 80)

    @admin.action(description="Run sync now (for these runs' connections)", permissions=["operate"])
    def run_sync_now(self, request, queryset):
        ids = sorted({run.connection_id for run in queryset})
        queue_staff_syncs(request, ids)


def _retry(request, rma_ids, *, clear_flags: bool = False) -> None:
    """Queue the retry, then tell staff which items were queued and which were not, and why."""
    result = retry_items(rma_ids, user=request.user.get_username(), clear_flags=clear_flags)
    # Coalesced: a sync already waiting for a connection serves the retry too (it reads its
    # work when it starts, after the retry above has committed).
    request_syncs_now(sorted(result.connection_ids), SyncRun.Trigger.ADMIN)
    if result.queued:
        messages.success(
            request,
            "Retry queued — " + "; ".join(result.queued) + ". Its outcome shows in Open problems.",
        )
    if result.left:
        messages.warning(request, "Not retried — " + "; ".join(result.left) + ".")


retry_and_report = _retry  # what the problem list and the timeline use


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


GOODS_IN_WORDS = {
    True: "The connector created the goods-in note (the return was processed on the platform "
    "first).",
    False: "No: goods are received by the warehouse in Brightpearl (see the RMA's lines).",
}


@admin.register(SalesCredit)
class SalesCreditAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__",
        "connection",
        "state",
        "credit_id",
        "order_number",
        "parent_order_id",
        "attempts",
        "processed",
        "error_short",
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
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "rma_link",
                    "connection",
                    "state",
                    "credit_id",
                    "order_link",
                    "order_number",
                    "customer_ref",
                    "external_ref",
                    "currency",
                    "warehouse",
                    "adopted",
                    "goods_in_words",
                    "processed",
                    "closed",
                    "created",
                )
            },
        ),
        ("Rows sent to Brightpearl", {"fields": ("rows",)}),
        ("Attempts", {"fields": ("attempts", "attempt_started_at", "last_error")}),
    )
    readonly_fields = (
        "rma_link",
        "warehouse",
        "order_link",
        "goods_in_words",
        "processed",
        "closed",
        "created",
        "rows",
    )

    @admin.display(description="RMA")
    def rma_link(self, obj: SalesCredit) -> str:
        url = reverse("admin:returns_rma_change", args=[obj.rma_id])
        return format_html('<a href="{}">{}</a>', url, obj.rma.rma_number or obj.rma_id)

    @admin.display(description="Brightpearl warehouse")
    def warehouse(self, obj: SalesCredit) -> str:
        return obj.warehouse_id or "— (the original order's)"

    @admin.display(description="original order in Brightpearl")
    def order_link(self, obj: SalesCredit) -> str:
        url = brightpearl_order_url(obj.connection, obj.parent_order_id)
        if not url:
            return obj.parent_order_id or "—"
        return format_html('<a href="{}">Order {}</a>', url, obj.parent_order_id)

    @admin.display(description="received via a goods-in note the connector made")
    def goods_in_words(self, obj: SalesCredit) -> str:
        return GOODS_IN_WORDS[bool(obj.received_via_goods_in)]

    @admin.display(description="processed at", ordering="processed_at")
    def processed(self, obj: SalesCredit) -> str:
        return when(obj.processed_at)

    @admin.display(description="closed at")
    def closed(self, obj: SalesCredit) -> str:
        return when(obj.closed_at)

    @admin.display(description="created at")
    def created(self, obj: SalesCredit) -> str:
        return when(obj.created_at)

    @admin.display(description="rows")
    def rows(self, obj: SalesCredit) -> str:
        return rows_table(obj.planned_rows, obj.currency)

    @admin.display(description="last error")
    def error_short(self, obj) -> str:
        return shortened(obj.last_error, 70)

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
        "__str__",
        "connection",
        "state",
        "treatment",
        "amount",
        "bonus",
        "payment_id",
        "note_id",
        "transaction_ref",
        "payment_method_code",
        "attempts",
        "error_short",
    )
    list_filter = ("connection", "state", "treatment")
    search_fields = ("transaction_ref", "payment_id", "sales_credit__credit_id")
    list_select_related = ("connection", "refund", "refund__rma", "sales_credit")
    raw_id_fields = ("connection", "refund", "sales_credit")
    fields = (
        "rma_link",
        "credit_link",
        "connection",
        "state",
        "treatment",
        "amount",
        "bonus",
        "payment_id",
        "note_id",
        "transaction_ref",
        "payment_method_code",
        "created",
        "attempts",
        "last_error",
    )
    readonly_fields = ("rma_link", "credit_link", "amount", "created")

    @admin.display(description="RMA")
    def rma_link(self, obj: RefundPayment) -> str:
        rma = obj.refund.rma
        url = reverse("admin:returns_rma_change", args=[rma.pk])
        return format_html('<a href="{}">{}</a>', url, rma.rma_number or rma.pk)

    @admin.display(description="sales credit")
    def credit_link(self, obj: RefundPayment) -> str:
        url = reverse("admin:connector_salescredit_change", args=[obj.sales_credit_id])
        return format_html('<a href="{}">{}</a>', url, obj.sales_credit)

    @admin.display(description="amount")
    def amount(self, obj: RefundPayment) -> str:
        """What is recorded against the credit (capped at its total), else the refund's."""
        if obj.amount is not None:
            return money(obj.amount, obj.currency or obj.refund.currency)
        return money(obj.refund.amount, obj.refund.currency)

    @admin.display(description="recorded at")
    def created(self, obj: RefundPayment) -> str:
        return when(obj.created_at)

    @admin.display(description="last error")
    def error_short(self, obj) -> str:
        return shortened(obj.last_error, 70)


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
