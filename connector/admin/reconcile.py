"""The reconciliation page of a connection (a `ConnectionAdmin` mixin): pick a window, see every
return side by side with its Brightpearl credits and payments, the differences by kind, a CSV
of them, and a "fix" button where the fix is safe (connector/services/reconcile.py).

Reading needs the view permission; a fix writes to Brightpearl and needs operate. A page never
waits long for the account's Brightpearl budget (other merchants' work shares it): beyond
`WAIT_FOR_BUDGET` seconds it says when to try again.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode

from brightpearl import BrightpearlError, BudgetSpent
from returns.platforms.errors import PlatformError

from ..models import Connection, SyncRun
from ..secrets import redact
from ..services import reconcile, reconcile_fix
from ..services.brightpearl import never_sleep_for_budget
from .permissions import requires

WAIT_FOR_BUDGET = 10.0


def _budget_words(exc: BudgetSpent) -> str:
    return (
        f"Brightpearl's request budget for this account is spent; try again in "
        f"{exc.retry_after:.0f} s."
    )


class ReconciliationViews:
    """`<id>/reconcile/` (view) and `<id>/reconcile/fix/` (operate, POST)."""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/reconcile/",
                view(self.reconcile_view),
                name="connector_connection_reconcile",
            ),
            path(
                "<path:object_id>/reconcile/fix/",
                view(self.reconcile_fix_view),
                name="connector_connection_reconcile_fix",
            ),
            *super().get_urls(),
        ]

    @requires("view")
    def reconcile_view(self, request, object_id):
        connection = get_object_or_404(Connection, pk=object_id)
        today = timezone.localdate()
        start = request.GET.get("from") or today.replace(day=1).isoformat()
        end = request.GET.get("to") or today.isoformat()
        report, error = None, ""
        if "from" in request.GET:
            try:
                with never_sleep_for_budget(WAIT_FOR_BUDGET):
                    report = reconcile.reconcile(connection, *reconcile.parse_window(start, end))
            except BudgetSpent as exc:
                error = _budget_words(exc)
            except ValueError as exc:
                error = str(exc)
            except (BrightpearlError, PlatformError) as exc:
                error = f"Could not compare: {redact(str(exc), connection)}"
        if report is not None and request.GET.get("format") == "csv":
            response = HttpResponse(reconcile.report_csv(report), content_type="text/csv")
            name = f"reconciliation-{connection.pk}-{start}-{end}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reconciliation · {connection.name}",
            "opts": self.model._meta,
            "original": connection,
            "start": start,
            "end": end,
            "report": report,
            "error": error,
            "platform_error": redact(report.platform_error, connection) if report else "",
            "kinds": reconcile.KINDS,
            "can_fix": self.has_operate_permission(request),
            "csv_query": urlencode({"from": start, "to": end, "format": "csv"}),
        }
        return TemplateResponse(request, "admin/connector/connection/reconcile.html", context)

    @requires("operate")
    def reconcile_fix_view(self, request, object_id):
        connection = get_object_or_404(Connection, pk=object_id)
        window = {k: request.POST.get(k) or request.GET.get(k) or "" for k in ("from", "to")}
        back = reverse("admin:connector_connection_reconcile", args=[connection.pk])
        back += "?" + urlencode(window) if window["from"] else ""
        if request.method != "POST":
            return HttpResponseRedirect(back)
        kind, external_id = request.POST.get("fix", ""), request.POST.get("external_id", "")
        try:
            with never_sleep_for_budget(WAIT_FOR_BUDGET):
                ctx = reconcile_fix.fix(
                    connection,
                    kind,
                    external_id,
                    request.POST.get("refund_id", ""),
                    trigger=SyncRun.Trigger.ADMIN,
                )
        except BudgetSpent as exc:
            messages.error(request, f"Not fixed: {_budget_words(exc)}")
        except reconcile_fix.NotFixable as exc:
            messages.error(request, f"Not fixed: {exc}")
        except (BrightpearlError, PlatformError) as exc:
            messages.error(request, f"Not fixed: {redact(str(exc), connection)}")
        else:
            for line in ctx.printed or ["Nothing to do."]:
                messages.info(request, redact(line, connection))
        return HttpResponseRedirect(back)
