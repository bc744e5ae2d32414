"""Admin forms: clean what staff type, keep secrets write-only, offer Brightpearl's and the
platform's own lists (by name and ID) where an ID is asked for, and check the settings against
Brightpearl before anything is saved."""

from django import forms
from django.core.validators import MinValueValidator

from returns.platforms import registry

from .models import Connection
from .models.connection import LABELS, POSITIVE
from .outbound import platform_url_problem, public_api_url
from .services.connection_check import (
    UNVERIFIED,
    RefundRows,
    check_connection,
    stored_refund_rows,
)
from .services.reference import Choices, brightpearl_choices, destination_choices

# Labels and help texts in the merchant's words, in one place (the model's names stay as the
# code's; changing them here needs no migration).
HELP_TEXTS = {
    "platform_api_url": "Leave empty: the connector uses the platform's own address. Only for "
    "testing against a sandbox.",
    "refund_method_code": "The Brightpearl bank account (its 4-digit nominal code, e.g. 1200) "
    "that refunds are paid from (Accounting › List bank accounts).",
    "credit_status_id": "Empty: Brightpearl's default status for new sales credits.",
    "credit_channel_id": "Empty: Brightpearl's default channel.",
    "received_status_id": "Optional. When staff move a sales credit to this status, every "
    "item is taken as received.",
    "cancelled_credit_status_id": "Optional. A return cancelled, rejected or expired on the "
    "platform after its credit was made moves the credit here, with a note saying why. Empty: "
    "the credit gets a “do not refund” note and the return is flagged for staff.",
}

# Settings only some returns platforms use: each input says which (from the platform registry),
# and the connection page shows it only while one of those platforms is chosen.
PLATFORM_SETTINGS = (
    "platform_api_key",
    "platform_shop_name",
    "platform_api_url",
    "platform_webhook_secret",
    "mark_shipments_received",
)


def mark_platform_settings(fields: dict[str, forms.Field]) -> None:
    """`data-platforms="loop returngo"` on each platform setting's input (static/connector/
    platform_fields.js hides the row for other platforms; the values stay in the form)."""
    for name in PLATFORM_SETTINGS:
        if name in fields:
            fields[name].widget.attrs["data-platforms"] = " ".join(registry.platforms_using(name))


# Settings whose value is one of Brightpearl's records: offered as a list of names and IDs.
BRIGHTPEARL_PICKERS = {
    "credit_status_id": "credit_statuses",
    "received_status_id": "credit_statuses",
    "duplicate_credit_status_id": "credit_statuses",
    "cancelled_credit_status_id": "credit_statuses",
    "credit_channel_id": "channels",
    "refund_method_code": "bank_accounts",
}


def offer_choices(field: forms.Field, choices: Choices, current, *, what: str) -> None:
    """A list of names and IDs when it could be loaded; otherwise the field keeps taking a
    typed ID and its help text says why no list is shown. A stored value missing from the
    list stays selectable, marked as such, so opening a form never changes a setting."""
    if not choices.loaded:
        note = f"No list of {what} shown: {choices.problem}. Type the ID."
        field.help_text = f"{field.help_text} {note}".strip()
        return
    options = list(choices.options)
    if current not in (None, "") and choices.name_of(current) is None:
        options.append((str(current), f"{current} — not found in the list"))
    blank = "— none —" if not field.required else "— choose —"
    attrs = {k: v for k, v in field.widget.attrs.items() if k not in ("min", "step")}
    field.widget = forms.Select(choices=[("", blank), *options], attrs=attrs)


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
        labels = LABELS
        help_texts = HELP_TEXTS

    platform_api_url = forms.URLField(
        label=LABELS["platform_api_url"],
        required=False,
        assume_scheme="https",
        help_text=HELP_TEXTS["platform_api_url"],
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
        mark_platform_settings(self.fields)
        self._offer_brightpearl_lists()
        # The warehouse-mapping formset is built on this instance and checks the settings
        # with the mappings typed (CheckedMappingFormSet): this is how it reaches the fields.
        self.instance._settings_form = self

    def _offer_brightpearl_lists(self) -> None:
        loaded: dict[str, Choices] = {}
        for name, kind in BRIGHTPEARL_PICKERS.items():
            if name not in self.fields:
                continue
            if kind not in loaded:
                loaded[kind] = brightpearl_choices(self.instance, kind)
            what = kind.replace("_", " ").replace("credit ", "sales-credit ")
            offer_choices(self.fields[name], loaded[kind], getattr(self.instance, name), what=what)

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


class WarehouseMappingForm(forms.ModelForm):
    """One mapping: the platform's destination and Brightpearl's warehouse, picked by name."""

    destination_choices: Choices = Choices(problem="no connection")
    warehouse_choices: Choices = Choices(problem="no connection")
    checked_field = "warehouse_id"  # where the connection check's verdict on the row goes

    class Meta:
        fields = ("destination_id", "warehouse_id")
        labels = {
            "destination_id": "Returns platform destination",
            "warehouse_id": "Brightpearl warehouse",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        offer_choices(
            self.fields["destination_id"],
            self.destination_choices,
            self.instance.destination_id,
            what="destinations",
        )
        offer_choices(
            self.fields["warehouse_id"],
            self.warehouse_choices,
            self.instance.warehouse_id,
            what="warehouses",
        )
        if self.instance.pk:  # the row's title reads with names (WarehouseMapping.describe)
            self.instance.names = (
                _bare(self.destination_choices.name_of(self.instance.destination_id)),
                _bare(self.warehouse_choices.name_of(self.instance.warehouse_id)),
            )


def _bare(label: str | None) -> str:
    """ "Main DC (101)" → "Main DC" (the ID is said next to it already)."""
    return (label or "").rsplit(" (", 1)[0]


def mapping_form_for(connection) -> type[WarehouseMappingForm]:
    """The mapping form with this connection's lists (loaded once per page, cached)."""
    return type(
        "WarehouseMappingForm",
        (WarehouseMappingForm,),
        {
            "destination_choices": destination_choices(connection),
            "warehouse_choices": brightpearl_choices(connection, "warehouses"),
        },
    )


class RefundBankAccountForm(forms.ModelForm):
    """A currency and the bank account its refunds are paid from, picked from Brightpearl's
    bank accounts by name."""

    bank_choices: Choices = Choices(problem="no connection")
    checked_field = "nominal_code"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        offer_choices(
            self.fields["nominal_code"],
            self.bank_choices,
            self.instance.nominal_code,
            what="bank accounts",
        )


class OutcomeMappingForm(forms.ModelForm):
    """A refund outcome and how it is booked; the payment method is picked from Brightpearl's."""

    method_choices: Choices = Choices(problem="no connection")
    checked_field = "payment_method_code"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        offer_choices(
            self.fields["payment_method_code"],
            self.method_choices,
            self.instance.payment_method_code,
            what="payment methods",
        )


def refund_bank_form_for(connection) -> type[RefundBankAccountForm]:
    choices = brightpearl_choices(connection, "bank_accounts")
    return type("RefundBankAccountForm", (RefundBankAccountForm,), {"bank_choices": choices})


def outcome_form_for(connection) -> type[OutcomeMappingForm]:
    choices = brightpearl_choices(connection, "payment_methods")
    return type("OutcomeMappingForm", (OutcomeMappingForm,), {"method_choices": choices})


class CheckedMappingFormSet(forms.BaseInlineFormSet):
    """Validates the mappings, then checks the whole connection against Brightpearl with the
    values typed — before saving, whichever save button was pressed. A setting Brightpearl
    does not know is an error on its field (or mapping row) and nothing is saved; when
    Brightpearl cannot be asked, the settings are saved and the admin reports why they were
    not checked. The items are kept (`check_items`) for the admin to store and show."""

    check_items: list | None = None

    def clean(self):
        super().clean()
        settings_form = getattr(self.instance, "_settings_form", None)
        if settings_form is None or not settings_form.is_valid() or self.errors_in_rows():
            return
        typed = _typed_refund_rows(self.instance)
        if typed is not None and typed.invalid:
            return  # their own row errors say what to fix; Brightpearl is asked once they pass
        rows = {}
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data and not data.get("DELETE") and data.get("warehouse_id"):
                rows[str(data.get("destination_id"))] = form
        mappings = [form.instance for form in rows.values()]
        for form, mapping in zip(rows.values(), mappings, strict=True):
            mapping.destination_id = str(form.cleaned_data["destination_id"]).strip()
            mapping.warehouse_id = form.cleaned_data["warehouse_id"]
        self.check_items = check_connection(
            self.instance,
            save=False,
            mappings=mappings,
            refund_rows=typed.rows if typed is not None else None,
        )
        row_forms = {f"warehouse_mapping[{key}]": form for key, form in rows.items()}
        row_forms.update(typed.forms if typed is not None else {})
        if _mark_refusals(self.check_items, settings_form, row_forms):
            raise forms.ValidationError(
                "Brightpearl does not know some of these settings (marked below); "
                "nothing was saved."
            )

    def errors_in_rows(self) -> bool:
        return any(form.errors for form in self.forms)


def _mark_refusals(items, settings_form, row_forms: dict) -> bool:
    """Each refused setting as an error on its field or inline row; True if any was refused."""
    refused = False
    for item in items:
        if item.ok or item.field in UNVERIFIED:
            continue
        refused = True
        row = row_forms.get(item.field)
        if row is not None:
            row.add_error(row.checked_field, item.message)
        elif item.field in settings_form.fields:
            settings_form.add_error(item.field, item.message)
        else:
            settings_form.add_error(None, item.message)
    return refused


class RefundRowsFormSet(forms.BaseInlineFormSet):
    """The bank accounts per currency and the refund outcome mappings. They are checked with the
    rest of the connection, as typed, by the warehouse-mapping formset (CheckedMappingFormSet):
    each formset makes itself known on the connection being edited."""

    kind = ""  # "bank_accounts" or "outcome_mappings"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        typed = getattr(self.instance, "_refund_formsets", None)
        if typed is None:
            typed = self.instance._refund_formsets = {}
        typed[self.kind] = self

    def typed_forms(self) -> list:
        """The rows staff kept (valid, not deleted, not left empty)."""
        return [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None) and not form.cleaned_data.get("DELETE")
        ]


class _TypedRefundRows:
    """What staff typed in the refund inlines, as the check wants it, and the row form for each
    checked field (an inline that is not on the page counts as what is stored)."""

    def __init__(self, instance, formsets: dict):
        self.invalid = any(not formset.is_valid() for formset in formsets.values())
        stored = stored_refund_rows(instance)
        kept = {
            kind: formset.typed_forms() if not self.invalid else []
            for kind, formset in formsets.items()
        }
        self.rows = RefundRows(
            [f.instance for f in kept["bank_accounts"]]
            if "bank_accounts" in kept
            else stored.bank_accounts,
            [f.instance for f in kept["outcome_mappings"]]
            if "outcome_mappings" in kept
            else stored.outcome_mappings,
        )
        self.forms = {
            f"refund_bank_account[{f.instance.currency}]": f for f in kept.get("bank_accounts", [])
        }
        self.forms.update(
            {f"outcome_mapping[{f.instance.outcome}]": f for f in kept.get("outcome_mappings", [])}
        )


def _typed_refund_rows(instance) -> _TypedRefundRows | None:
    formsets = getattr(instance, "_refund_formsets", None)
    return _TypedRefundRows(instance, formsets) if formsets else None
