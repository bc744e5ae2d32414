"""The RMA page as a timeline, and one search box that finds a return by anything staff have.

`returns` owns the RMA admin and never imports the connector, so the connector registers its
own subclass of it here (as `thirdparty` does for libraries): same lists and fields, plus

* the change page opens with the return's timeline (connector/services/timeline.py): what
  happened in time order, the next expected step, links to Brightpearl, and what staff can do
  now (retry, clear flag and retry) as buttons that declare their permission;
* the search box also matches the platform order name with or without “#”, the RMA number,
  the platform return ID, the Brightpearl original order ID and the sales-credit ID.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

import returns.admin as returns_admin  # registers returns' RmaAdmin first, to be replaced
from returns.models import Rma

from ..services import problems as problem_service
from ..services import timeline as timeline_service
from .badges import ConsoleMedia, seconds
from .logs import retry_and_report
from .permissions import RolePermissionsMixin, requires


def order_search(term: str) -> Q:
    """RMAs an exact identifier names: order name (with or without '#'), RMA number, platform
    return or order ID, Brightpearl original order ID or sales-credit ID."""
    bare = term.lstrip("#")
    query = (
        Q(order_name__iexact=term)
        | Q(order_name__iexact=bare)
        | Q(order_name__iexact=f"#{bare}")
        | Q(rma_number__iexact=term)
        | Q(external_id__iexact=term)
        | Q(order_id__iexact=term)
    )
    if bare.isdigit() and len(bare) < 19:
        number = int(bare)
        query |= Q(sales_credit__parent_order_id=number) | Q(sales_credit__credit_id=number)
    return query


if admin.site.is_registered(Rma):
    admin.site.unregister(Rma)


@admin.register(Rma)
class RmaAdmin(ConsoleMedia, RolePermissionsMixin, returns_admin.RmaAdmin):
    change_form_template = "admin/connector/rma/change_form.html"
    search_help_text = (
        "Order name (#1042), RMA number, Brightpearl order ID or sales-credit ID — or part of "
        "one, or a SKU"
    )
    actions = ["retry_selected", "clear_flag_and_retry"]

    def get_search_results(self, request, queryset, search_term):
        """An exact identifier finds just its return(s); otherwise the partial search of
        returns' admin (part of a number, a SKU)."""
        term = search_term.strip()
        if term:
            exact = queryset.filter(order_search(term)).distinct()
            if exact.exists():
                return exact, False
        return super().get_search_results(request, queryset, search_term)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/retry/", view(self.retry_view), name="returns_rma_retry"),
            path(
                "<path:object_id>/clear-flag/",
                view(self.clear_flag_view),
                name="returns_rma_clear_flag",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rma = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if rma is not None:
            timeline = timeline_service.build(rma)
            extra.update(
                timeline=timeline,
                entries=[(seconds(e.at), e) for e in timeline.entries],
                problems=[(p, problem_service.advice(p)) for p in timeline.open_problems],
                can_operate=self.has_operate_permission(request),
            )
        return super().change_view(request, object_id, form_url, extra)

    @requires("operate")
    def retry_view(self, request, object_id):
        return self._act(request, object_id, clear_flags=False)

    @requires("operate")
    def clear_flag_view(self, request, object_id):
        return self._act(request, object_id, clear_flags=True)

    def _act(self, request, object_id, *, clear_flags: bool):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        rma = get_object_or_404(Rma, pk=object_id)
        retry_and_report(request, [rma.pk], clear_flags=clear_flags)
        return HttpResponseRedirect(reverse("admin:returns_rma_change", args=[rma.pk]))

    @admin.action(description="Retry selected returns", permissions=["operate"])
    def retry_selected(self, request, queryset):
        retry_and_report(request, list(queryset.values_list("pk", flat=True)))

    @admin.action(
        description="Clear flag and retry (the cause is resolved)", permissions=["operate"]
    )
    def clear_flag_and_retry(self, request, queryset):
        retry_and_report(request, list(queryset.values_list("pk", flat=True)), clear_flags=True)
