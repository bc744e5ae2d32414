"""Admin forms: clean what staff type, keep secrets write-only."""

from django import forms
from django.core.validators import MinValueValidator

from .models import Connection
from .models.connection import POSITIVE
from .outbound import platform_url_problem, public_api_url


class SecretInput(forms.PasswordInput):
    """Never renders the stored value back; shows whether one is set."""

    template_name = "connector/widgets/secret_input.html"

    def __init__(self, *args, is_set: bool = False, **kwargs):
        super().__init__(*args, render_value=False, **kwargs)
        self.is_set = is_set

    def get_context(self, name, value, attrs):
        context = super().get_context(name, None, attrs)
        context["widget"]["is_set"] = self.is_set
        return context


class ConnectionForm(forms.ModelForm):
    """Strips stray spaces everywhere; a blank secret keeps the stored one.

    To remove a stored secret, tick the matching "clear" box.
    """

    class Meta:
        model = Connection
        fields = "__all__"

    platform_api_url = forms.URLField(
        label="platform API URL",
        required=False,
        assume_scheme="https",
        help_text=Connection._meta.get_field("platform_api_url").help_text,
    )

    # One "remove" box per secret: a blank secret input means "keep", so clearing is explicit.
    clear_brightpearl_account_token = forms.BooleanField(required=False)
    clear_brightpearl_staff_token = forms.BooleanField(required=False)
    clear_brightpearl_client_secret = forms.BooleanField(required=False)
    clear_brightpearl_access_token = forms.BooleanField(required=False)
    clear_brightpearl_refresh_token = forms.BooleanField(required=False)
    clear_platform_api_key = forms.BooleanField(required=False)
    clear_platform_webhook_secret = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if isinstance(field, forms.IntegerField) and name != "sync_interval_minutes":
                # Brightpearl IDs: one clear message for 0 and negatives alike.
                field.validators = [
                    v for v in field.validators if not isinstance(v, MinValueValidator)
                ] + POSITIVE
                field.widget.attrs["min"] = 1
        for name in Connection.SECRET_FIELDS:
            if name not in self.fields:
                continue
            is_set = bool(self.instance.pk and getattr(self.instance, name))
            field = self.fields[name]
            field.widget = SecretInput(is_set=is_set)
            field.initial = None
            field.required = False
            field.strip = True
            clear = self.fields.get(f"clear_{name}")
            if clear is not None:
                clear.label = f"Remove the stored {field.label}"

    def clean(self):
        cleaned = super().clean()
        self._check_platform_destination(cleaned)
        for name in Connection.SECRET_FIELDS:
            if name not in self.fields:
                continue
            new_value = (cleaned.get(name) or "").strip()
            if cleaned.get(f"clear_{name}"):
                cleaned[name] = None
            elif not new_value:
                # Blank input means "unchanged": keep what is stored.
                cleaned[name] = getattr(self.instance, name) if self.instance.pk else None
            else:
                cleaned[name] = new_value
            setattr(self.instance, name, cleaned[name])
        for name, value in list(cleaned.items()):
            if isinstance(value, str):
                cleaned[name] = value.strip()
        return cleaned

    def _check_platform_destination(self, cleaned) -> None:
        """The platform key goes only to an allowed URL, and moving it elsewhere (another URL
        or platform) needs the key typed again: a stored key never follows a changed URL."""
        platform = cleaned.get("platform") or self.instance.platform
        url = (cleaned.get("platform_api_url") or "").strip()
        problem = platform_url_problem(platform, url)
        if problem:
            self.add_error("platform_api_url", problem)
            return
        if not self.instance.pk or not self.instance.platform_api_key:
            return
        if not public_api_url(platform):
            return  # the generic intake API sends the key nowhere
        moved = url != (self.instance.platform_api_url or "").strip() or (
            platform != self.instance.platform
        )
        if moved and not (cleaned.get("platform_api_key") or "").strip():
            self.add_error(
                "platform_api_key",
                "The platform or its API URL changed: enter the API key again to send it there.",
            )
