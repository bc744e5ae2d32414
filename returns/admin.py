"""Read-only admin for the neutral RMA store: staff look things up here, they never edit.

RMA rows are written by intake and the sync engine only; corrections happen on the platform and
flow back through a re-sync.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from .display import money, rma_status_badge, shortened, when
from .models import Refund, Rma, RmaLine

# What other apps know about an RMA, as links (label, URL): the connector adds its sales
# credit, payments and the Brightpearl order (connector/admin/rma_links.py) — this app never
# imports it. `RMA_RELATED` names what those links read, so the list loads it in one query.
RmaLinks = Callable[[Rma], list[tuple[str, str]]]
RMA_LINKS: list[RmaLinks] = []
RMA_RELATED: list[str] = []
RMA_PREFETCH: list[str] = ["refunds"]


def add_rma_links(
    provider: RmaLinks, *, related: tuple[str, ...] = (), prefetch: tuple[str, ...] = ()
) -> None:
    if provider not in RMA_LINKS:
        RMA_LINKS.append(provider)
        RMA_RELATED.extend(r for r in related if r not in RMA_RELATED)
        RMA_PREFETCH.extend(p for p in prefetch if p not in RMA_PREFETCH)


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


LINE_MONEY = ("unit_price", "discount", "tax", "restocking_fee", "return_fee", "shipment_fee")


def _line_money(name: str):
    @admin.display(description=RmaLine._meta.get_field(name).verbose_name)
    def show(self, line: RmaLine) -> str:
        return money(getattr(line, name), line.rma.currency)

    show.__name__ = show.__qualname__ = f"{name}_shown"
    return show


# `<field>_shown`: each amount of a line with 2 decimals and the return's currency.
LineMoneyDisplays = type(
    "LineMoneyDisplays", (), {f"{name}_shown": _line_money(name) for name in LINE_MONEY}
)


class RmaLineInline(LineMoneyDisplays, ReadOnlyInline):
    model = RmaLine
    fields = (
        "sku",
        "title",
        "quantity",
        "quantity_received",
        "quantity_restocked",
        *(f"{name}_shown" for name in LINE_MONEY[:3]),
        "tax_included",
        *(f"{name}_shown" for name in LINE_MONEY[3:]),
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
        "amount_shown",
        "shop_amount_shown",
        "method",
        "reference",
        "status",
        "refunded_when",
    )
    readonly_fields = fields

    @admin.display(description="amount")
    def amount_shown(self, obj: Refund) -> str:
        return money(obj.amount, obj.currency)

    @admin.display(description="in the shop's currency")
    def shop_amount_shown(self, obj: Refund) -> str:
        if obj.shop_amount is None:
            return "—"
        return money(obj.shop_amount, obj.shop_currency)

    @admin.display(description="refunded at")
    def refunded_when(self, obj: Refund) -> str:
        if obj.refunded_at:
            return when(obj.refunded_at)
        return (
            f"{when(obj.created_at)} (when the connector learnt of it; the platform gave no time)"
        )


@admin.register(Rma)
class RmaAdmin(admin.ModelAdmin):
    list_display = (
        "rma_number",
        "order_name",
        "connection",
        "status_badge",
        "flag_reason_short",
        "refunded",
        "links",
        "updated",
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
                    "links",
                    "refunded",
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
        return [field.name for field in self.model._meta.fields] + [
            "sync_events_link",
            "links",
            "refunded",
        ]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).prefetch_related(*RMA_PREFETCH)
        return queryset.select_related(*RMA_RELATED) if RMA_RELATED else queryset

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Rma) -> str:
        return rma_status_badge(obj)

    @admin.display(description="why flagged")
    def flag_reason_short(self, obj: Rma) -> str:
        return shortened(obj.flag_reason if obj.flagged else "", 70)

    @admin.display(description="refunded")
    def refunded(self, obj: Rma) -> str:
        refunds = list(obj.refunds.all())
        if not refunds:
            return "—"
        currency = refunds[0].currency or obj.currency
        return money(sum(r.amount for r in refunds), currency)

    @admin.display(description="credit · payment · order")
    def links(self, obj: Rma) -> str:
        found = [link for provider in RMA_LINKS for link in provider(obj)]
        if not found:
            return "—"
        return format_html_join(" · ", '<a href="{}">{}</a>', ((u, t) for t, u in found))

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj: Rma) -> str:
        return when(obj.updated_at)

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
