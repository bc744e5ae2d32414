"""Backfill in the admin: the connection action that asks for a date (dry run by default) and
queues the job on the bulk queue, and the read-only list of jobs with their progress, from
which a finished dry run is started for real (connector/services/backfill.py)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from ..models import BackfillJob
from ..services import backfill
from ..services.reconcile import parse_window
from ..tasks import enqueue_backfill
from .permissions import RolePermissionsMixin


def _queue(request, connection, since, dry_run: bool) -> BackfillJob | None:
    try:
        job = backfill.request_backfill(
            connection, since, dry_run=dry_run, requested_by=request.user.get_username()
        )
    except ValueError as exc:
        messages.error(request, f"{connection.name}: {exc}")
        return None
    enqueue_backfill(job.pk)
    url = reverse("admin:connector_backfilljob_change", args=[job.pk])
    kind = "Dry run" if dry_run else "Backfill"
    messages.success(
        request,
        format_html(
            '{}: {} of returns created from {} queued; <a href="{}">follow its progress</a>.',
            connection.name,
            kind,
            f"{since:%Y-%m-%d}",
            url,
        ),
    )
    return job


class BackfillActions:
    """The `ConnectionAdmin` action: ask for the date, then queue."""

    @admin.action(description="Backfill returns from a date…", permissions=["operate"])
    def backfill_returns(self, request, queryset):
        if request.POST.get("apply"):
            since_text = request.POST.get("since", "")
            try:
                since, _ = parse_window(since_text, since_text)
            except ValueError as exc:
                messages.error(request, str(exc).replace("--from", "The date"))
                return None
            dry_run = bool(request.POST.get("dry_run"))
            for connection in queryset:
                _queue(request, connection, since, dry_run)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Backfill returns",
            "opts": self.model._meta,
            "connections": list(queryset),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/connector/connection/backfill.html", context)


@admin.register(BackfillJob)
class BackfillJobAdmin(RolePermissionsMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "connection",
        "kind",
        "since",
        "status",
        "progress_shown",
        "counts_shown",
    )
    list_filter = ("status", "dry_run", "connection")
    list_select_related = ("connection",)
    raw_id_fields = ("connection",)
    readonly_fields = (
        "connection",
        "kind",
        "since",
        "until",
        "status",
        "progress_shown",
        "reached",
        "counts_shown",
        "plan_shown",
        "message",
        "brightpearl_requests",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    fields = readonly_fields
    actions = ["run_for_real"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="kind")
    def kind(self, obj: BackfillJob) -> str:
        return "Dry run" if obj.dry_run else "Import"

    @admin.display(description="progress")
    def progress_shown(self, obj: BackfillJob) -> str:
        return f"{obj.progress:.0%}"

    @admin.display(description="counts")
    def counts_shown(self, obj: BackfillJob) -> str:
        shown = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(obj.counts.items()))
        return shown or "—"

    @admin.display(description="what it would do")
    def plan_shown(self, obj: BackfillJob):
        if not obj.plan:
            return "—"
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((line,) for line in obj.plan))
        )

    @admin.action(description="Run selected dry runs for real", permissions=["operate"])
    def run_for_real(self, request, queryset):
        done = queryset.filter(dry_run=True, status=BackfillJob.Status.SUCCEEDED)
        if not done.exists():
            messages.warning(request, "Select a finished dry run: it shows what will be done.")
        for job in done.select_related("connection"):
            _queue(request, job.connection, job.since, dry_run=False)
