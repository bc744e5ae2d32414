"""The admin site: Django's, with the overview on its index page (what needs staff today, per
connection) above the usual list of models. Installed as the default site by
`connector.apps.ConnectorAdminConfig` (settings: INSTALLED_APPS), so every `admin.site` in the
project is this one. Kept outside the `connector.admin` package: Django imports it while the
admin modules are being registered (so it imports nothing of `connector.admin`; the overview's
charts are `connector/charts.py`)."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import admin

from .charts import budget_chart, legend, returns_chart
from .services.brightpearl import interactive_lane
from .services.overview import build


class ConnectorAdminSite(admin.AdminSite):
    index_template = "admin/connector/index.html"
    index_title = "Returns ↔ Brightpearl: overview"

    def admin_view(self, view, cacheable=False):
        """Every admin view (Check connection, Reconcile and its fixes, the lists offered in
        forms) is a staff action someone waits for: its Brightpearl requests spend from the
        interactive lane, not behind a large sync (issue #11, services/brightpearl.py)."""
        wrapped = super().admin_view(view, cacheable)

        @wraps(wrapped)
        def staff_action(request, *args, **kwargs):
            with interactive_lane():
                return wrapped(request, *args, **kwargs)

        return staff_action

    def index(self, request, extra_context=None):
        extra = dict(extra_context or {})
        if request.user.has_perm("connector.view_connection"):
            views, left_out = build()
            extra.update(
                overview=[(v, returns_chart(v), budget_chart(v)) for v in views],
                overview_left_out=left_out,
                overview_legend=legend(),
                can_search_returns=request.user.has_perm("returns.view_rma"),
                webhooks_enabled=settings.WEBHOOKS_ENABLED,
            )
        return super().index(request, extra)
