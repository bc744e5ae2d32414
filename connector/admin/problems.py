"""Open problems: the to-do list of what failed or was flagged and is not fixed yet.

Opens on the open ones (the state filter defaults to "Open"); each row says what to do in plain
words, links the return's timeline, and shows the last retry and what came of it. Staff retry
from here, or dismiss with a note (typed into the action bar).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from ..models import Problem
from ..services import problems as problem_service
from .badges import ConsoleMedia, badge, seconds
from .logs import ReadOnlyAdmin, retry_and_report


class StateFilter(admin.SimpleListFilter):
    """Open problems unless staff ask for the others."""

    title = "state"
    parameter_name = "state"
    DEFAULT = Problem.State.OPEN

    def lookups(self, request, model_admin):
        return [*Problem.State.choices, ("all", "All")]

    def choices(self, changelist):
        current = self.value() or self.DEFAULT
        for lookup, title in self.lookup_choices:
            yield {
                "selected": current == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or self.DEFAULT
        return queryset if value == "all" else queryset.filter(state=value)


class DismissForm(ActionForm):
    note = forms.CharField(
        required=False,
        label="Note",
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "why (to dismiss)"}),
    )


@admin.register(Problem)
class ProblemAdmin(ConsoleMedia, ReadOnlyAdmin):
    list_display = (
        "state_badge",
        "what",
        "kind",
        "message_and_advice",
        "last_seen",
        "retry",
        "connection",
    )
    list_display_links = None
    list_filter = (StateFilter, "outcome", "connection", "kind")
    search_fields = ("rma_number", "order_number", "message")
    search_help_text = "RMA number, order number or words of the message"
    list_select_related = ("connection", "rma")
    raw_id_fields = ("connection", "rma", "first_event", "last_event")
    action_form = DismissForm
    actions = ["retry_selected", "clear_flag_and_retry", "dismiss_with_note"]

    def has_delete_permission(self, request, obj=None):
        return False  # closed by a success or by staff with a note, never erased

    @admin.display(description="State")
    def state_badge(self, obj: Problem) -> str:
        if obj.state == Problem.State.OPEN:
            return badge(obj.get_outcome_display(), obj.outcome)
        return badge(obj.get_state_display(), obj.state)

    @admin.display(description="Return")
    def what(self, obj: Problem) -> str:
        if obj.rma_id is None:
            return "The whole connection"
        url = reverse("admin:returns_rma_change", args=[obj.rma_id])
        order = f" · order {obj.order_number}" if obj.order_number else ""
        return format_html('<a href="{}">RMA {}</a>{}', url, obj.rma_number or obj.rma_id, order)

    @admin.display(description="What happened · what to do")
    def message_and_advice(self, obj: Problem) -> str:
        closing = ""
        if obj.state != Problem.State.OPEN:
            who = f" by {obj.closed_by}" if obj.closed_by else ""
            closing = format_html(
                '<div class="console-closed">Closed {}{}: {}</div>',
                seconds(obj.closed_at),
                who,
                obj.resolution,
            )
        return format_html(
            '<div class="console-message">{}</div><div class="console-advice">{}</div>{}',
            obj.message,
            problem_service.advice(obj),
            closing,
        )

    @admin.display(description="Last seen", ordering="last_seen_at")
    def last_seen(self, obj: Problem) -> str:
        times = f" (×{obj.occurrences})" if obj.occurrences > 1 else ""
        return f"{seconds(obj.last_seen_at)}{times}"

    @admin.display(description="Last retry")
    def retry(self, obj: Problem) -> str:
        if obj.retried_at is None:
            return "–"
        return format_html(
            "{}<br>{} → <strong>{}</strong>",
            obj.retry_note,
            seconds(obj.retried_at),
            problem_service.retry_outcome(obj),
        )

    @admin.action(description="Retry selected items", permissions=["operate"])
    def retry_selected(self, request, queryset):
        retry_and_report(request, [p.rma_id for p in queryset if p.rma_id is not None])

    @admin.action(
        description="Clear flag and retry (the cause is resolved)", permissions=["operate"]
    )
    def clear_flag_and_retry(self, request, queryset):
        rma_ids = [p.rma_id for p in queryset if p.rma_id is not None]
        retry_and_report(request, rma_ids, clear_flags=True)

    @admin.action(description="Dismiss with the note typed here", permissions=["operate"])
    def dismiss_with_note(self, request, queryset):
        try:
            count = problem_service.dismiss(
                queryset, user=request.user.get_username(), note=request.POST.get("note", "")
            )
        except ValueError as exc:
            messages.error(request, str(exc))
            return
        messages.success(request, f"Dismissed {count} problem(s) at {seconds(timezone.now())}.")
