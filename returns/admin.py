"""Read-only admin for the neutral RMA store: staff look things up here, they never edit.

RMA rows are written by intake and the sync engine only; corrections happen on the platform and
flow back through a re-sync.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from .models import Refund, Rma, RmaLine


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class RmaLineInline(ReadOnlyInline):
    model = RmaLine
    fields = (
        "sku",
        "title",
        "quantity",
        "quantity_received",
        "quantity_restocked",
        "unit_price",
        "discount",
        "tax",
        "tax_included",
        "restocking_fee",
        "return_fee",
        "shipment_fee",
        "reason",
        "outcome",
        "platform_line_ids",
    )
    readonly_fields = fields


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = (
        "external_id",
        "outcome",
        "amount",
        "currency",
        "shop_amount",
        "shop_currency",
        "method",
        "reference",
        "status",
        "refunded_at",
    )
    readonly_fields = fields


@admin.register(Rma)
class RmaAdmin(admin.ModelAdmin):
    list_display = (
        "rma_number",
        "platform",
        "connection",
        "order_name",
        "status",
        "platform_status",
        "flagged",
        "currency",
        "platform_updated_at",
    )
    list_filter = (
        "connection",
        "platform",
        "status",
        "flagged",
        ("platform_created_at", admin.DateFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("rma_number", "external_id", "order_name", "lines__sku")
    list_select_related = ("connection",)
    show_full_result_count = False
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    inlines = (RmaLineInline, RefundInline)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "connection",
                    "platform",
                    "external_id",
                    "rma_number",
                    "status",
                    "furthest_status",
                    "platform_status",
                    "sync_events_link",
                )
            },
        ),
        (
            "Order",
            {"fields": ("order_id", "order_name", "destination_id", "currency", "customer_email")},
        ),
        ("Needs attention", {"fields": ("flagged", "flag_reason", "problems")}),
        (
            "Platform data",
            {
                "classes": ("collapse",),
                "fields": (
                    "platform_created_at",
                    "platform_updated_at",
                    "totals",
                    "raw",
                    "created_at",
                    "updated_at",
                ),
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + ["sync_events_link"]

    @admin.display(description="Sync events")
    def sync_events_link(self, obj: Rma) -> str:
        """The connector's log for this RMA. Resolved by URL name, so `returns` does not
        import `connector`; without the connector's admin there is simply no link."""
        if obj is None or obj.pk is None:
            return "-"
        try:
            url = reverse("admin:connector_syncevent_changelist")
        except NoReverseMatch:
            return "-"
        return format_html(
            '<a href="{}?rma__id__exact={}">Sync events for this RMA</a>', url, obj.pk
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Viewing is allowed through has_view_permission; nothing is editable.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
