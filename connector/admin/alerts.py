"""Alerts per connection, edited inline on the connection: who is told about new problems and
how often at most. Whoever may configure the connection may configure its alerts."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from ..models import AlertSettings
from ..services.alerts import settings_problems


class AlertSettingsForm(forms.ModelForm):
    class Meta:
        model = AlertSettings
        fields = ("email_to", "webhook_url", "on_flagged", "on_failed", "digest_minutes")

    def clean(self):
        cleaned = super().clean()
        for name in ("email_to", "webhook_url"):
            cleaned[name] = (cleaned.get(name) or "").strip()
        candidate = AlertSettings(email_to=cleaned["email_to"], webhook_url=cleaned["webhook_url"])
        for name, message in settings_problems(candidate).items():
            self.add_error(name, message)
        return cleaned


class KeepWhenAbsentFormSet(forms.BaseInlineFormSet):
    """A connection form posted without the alerts section (a script, an older page) leaves
    the alerts as they are, instead of failing on a missing management form."""

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        total = self.add_prefix("TOTAL_FORMS")
        if self.is_bound and total not in self.data:
            self.data = self.data.copy()
            self.data[total] = "0"
            self.data[self.add_prefix("INITIAL_FORMS")] = "0"


class AlertSettingsInline(admin.StackedInline):
    model = AlertSettings
    form = AlertSettingsForm
    formset = KeepWhenAbsentFormSet
    extra = 0
    max_num = 1
    verbose_name = "alerts (e-mail / webhook when a return is flagged or an item fails)"
    verbose_name_plural = verbose_name
    readonly_fields = ("last_sent_at", "last_error")
    fields = (
        "email_to",
        "webhook_url",
        "on_flagged",
        "on_failed",
        "digest_minutes",
        "last_sent_at",
        "last_error",
    )

    def _configure(self, request) -> bool:
        return request.user.has_perm("connector.change_connection")

    def has_add_permission(self, request, obj=None) -> bool:
        return self._configure(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._configure(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._configure(request)
