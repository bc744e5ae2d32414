"""A merchant's connection between one returns-platform store and one Brightpearl account.

Everything the Loop and ReturnGO Brightpearl guides ask a merchant for lives here. Secrets are
encrypted at rest (django-fernet-encrypted-fields) and never rendered back by the admin.
"""

import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from encrypted_fields.fields import EncryptedCharField, EncryptedTextField

from returns.models import PlatformKind as Platform  # noqa: F401  (constants for code)
from returns.platforms import registry

account_code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
    "Enter the Brightpearl account code (the alphanumeric login ID, e.g. 'store-name'), "
    "not the numeric account ID.",
)
datacentre_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]*$", "Enter a datacentre code such as euw1 or use1 (lowercase)."
)
app_ref_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
    "Enter the app reference exactly as Brightpearl shows it (letters, digits, '_' and '-').",
)
refund_method_code_validator = RegexValidator(
    r"^\d{4}$",
    "Enter the 4-digit bank account nominal code (Brightpearl: Accounting › List bank accounts), "
    "e.g. 1200.",
)
nominal_code_validator = RegexValidator(r"^\d{4}$", "Enter a 4-digit nominal code, e.g. 4000.")

POSITIVE = [MinValueValidator(1, "Enter a positive whole number (a Brightpearl ID).")]


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def account_key_for(account_code: str, datacentre: str) -> str:
    return f"{(datacentre or '').strip().lower()}/{(account_code or '').strip().lower()}"


class AuthMode(models.TextChoices):
    PRIVATE_ACCOUNT_TOKEN = "private_account", "Private app – account token"
    PRIVATE_STAFF_TOKEN = "private_staff", "Private app – staff token"
    OAUTH = "oauth", "OAuth instance app"


# The merchant's words for each setting: form labels and read-only pages alike.
LABELS = {
    "name": "Connection name",
    "brightpearl_account": "Brightpearl account code",
    "brightpearl_datacentre": "Brightpearl datacentre",
    "brightpearl_app_ref": "App reference",
    "brightpearl_installed_integration_instance_id": "Installed integration instance ID",
    "platform": "Returns platform",
    "platform_api_key": "Returns platform API key",
    "platform_shop_name": "Shop name (ReturnGO)",
    "platform_api_url": "Returns platform address (sandbox only)",
    "platform_webhook_secret": "Webhook signing secret (Loop)",
    "refund_method_code": "Bank account refunds are paid from",
    "credit_status_id": "Status of new sales credits",
    "credit_channel_id": "Channel of new sales credits",
    "customer_ref_prefix": "Prefix before the RMA number",
    "received_status_id": "Sales-credit status meaning “everything received”",
    "duplicate_credit_status_id": "Status for duplicate sales credits",
    "cancelled_credit_status_id": "Status for credits of returns cancelled after crediting",
    "fee_nominal_code": "Nominal code for fees",
    "sync_interval_minutes": "Sync every (minutes)",
}


class Connection(models.Model):
    """One merchant's link; every service function takes one of these first."""

    # Names of fields that hold secrets: encrypted, write-only in the admin, never logged.
    SECRET_FIELDS = (
        "brightpearl_account_token",
        "brightpearl_staff_token",
        "brightpearl_client_secret",
        "brightpearl_access_token",
        "brightpearl_refresh_token",
        "platform_api_key",
        "platform_webhook_secret",
    )

    name = models.CharField(LABELS["name"], max_length=100, unique=True)
    enabled = models.BooleanField(
        default=True, help_text="Disabled connections are not synced and their schedule is paused."
    )

    # --- Brightpearl -----------------------------------------------------------------------
    brightpearl_account = models.CharField(
        LABELS["brightpearl_account"], max_length=64, validators=[account_code_validator]
    )
    brightpearl_datacentre = models.CharField(
        LABELS["brightpearl_datacentre"],
        max_length=16,
        default="euw1",
        validators=[datacentre_validator],
        help_text="euw1 (Europe) or use1 (US East), as in your Brightpearl login address.",
    )
    brightpearl_auth_mode = models.CharField(
        "authentication", max_length=20, choices=AuthMode, default=AuthMode.PRIVATE_ACCOUNT_TOKEN
    )
    brightpearl_app_ref = models.CharField(
        LABELS["brightpearl_app_ref"], max_length=64, validators=[app_ref_validator]
    )
    brightpearl_account_token = EncryptedCharField(
        "account token", max_length=255, blank=True, null=True
    )
    brightpearl_staff_token = EncryptedCharField(
        "staff token", max_length=255, blank=True, null=True
    )
    brightpearl_dev_ref = models.CharField(
        "developer reference (OAuth)", max_length=64, blank=True, validators=[app_ref_validator]
    )
    brightpearl_client_secret = EncryptedCharField(
        "client secret (OAuth)", max_length=255, blank=True, null=True
    )
    brightpearl_access_token = EncryptedTextField("access token (OAuth)", blank=True, null=True)
    brightpearl_refresh_token = EncryptedTextField("refresh token (OAuth)", blank=True, null=True)
    brightpearl_token_expires_at = models.DateTimeField(
        "access token expires at (OAuth)", blank=True, null=True
    )
    brightpearl_installed_integration_instance_id = models.PositiveIntegerField(
        LABELS["brightpearl_installed_integration_instance_id"],
        blank=True,
        null=True,
        validators=POSITIVE,
        help_text="OAuth apps: sent with externalRef so Brightpearl rejects duplicate credits.",
    )

    # --- Returns platform ------------------------------------------------------------------
    platform = models.CharField(
        LABELS["platform"], max_length=20, choices=registry.choices, default="loop"
    )
    platform_api_key = EncryptedCharField(
        LABELS["platform_api_key"],
        max_length=255,
        blank=True,
        null=True,
        help_text="Loop: API key with Return, Order and Destinations (read) scopes. "
        "ReturnGO: Settings › Integrations › API.",
    )
    platform_shop_name = models.CharField(
        LABELS["platform_shop_name"],
        max_length=255,
        blank=True,
        help_text="ReturnGO: the shop URL from the store selector, e.g. example.myshopify.com.",
    )
    platform_api_url = models.URLField(
        LABELS["platform_api_url"],
        blank=True,
        help_text="Leave empty for the platform's public API; set it to point at a sandbox.",
    )
    platform_webhook_secret = EncryptedCharField(
        LABELS["platform_webhook_secret"],
        max_length=255,
        blank=True,
        null=True,
        help_text="Loop: the webhook secret from the Developer Tools page "
        "(verifies X-Loop-Signature).",
    )

    # --- How credits and refunds are made --------------------------------------------------
    refund_method_code = models.CharField(
        LABELS["refund_method_code"],
        max_length=4,
        validators=[refund_method_code_validator],
        help_text="The 4-digit nominal code of the bank account refunds are paid from "
        "(Accounting › List bank accounts).",
    )
    credit_status_id = models.PositiveIntegerField(
        LABELS["credit_status_id"],
        blank=True,
        null=True,
        validators=POSITIVE,
        help_text="Status for new sales credits. Empty: Brightpearl's configured default.",
    )
    credit_channel_id = models.PositiveIntegerField(
        LABELS["credit_channel_id"],
        blank=True,
        null=True,
        validators=POSITIVE,
        help_text="Channel for new sales credits. Empty: Brightpearl's default.",
    )
    customer_ref_prefix = models.CharField(
        LABELS["customer_ref_prefix"],
        max_length=20,
        blank=True,
        help_text="Put before the RMA number in the credit's customer reference, e.g. 'RMA-'.",
    )
    received_status_id = models.PositiveIntegerField(
        LABELS["received_status_id"],
        blank=True,
        null=True,
        validators=POSITIVE,
        help_text="Optional sales-credit status that means 'everything received'.",
    )
    duplicate_credit_status_id = models.PositiveIntegerField(
        LABELS["duplicate_credit_status_id"],
        blank=True,
        null=True,
        validators=POSITIVE,
        help_text="Optional sales-credit status meaning 'cancelled'. When the connector finds a "
        "second live credit for one return (e.g. one made by another integration), it moves the "
        "extra credit to this status with a note instead of leaving it to be refunded. Empty: "
        "the duplicate is only reported.",
    )
    cancelled_credit_status_id = models.PositiveIntegerField(
        LABELS["cancelled_credit_status_id"],
        blank=True,
        null=True,
        validators=POSITIVE,
        help_text="Optional sales-credit status meaning 'cancelled'. When a return is cancelled, "
        "rejected or expires on the platform after its credit was made and nothing was received "
        "or paid, the connector moves the credit here with a note saying why, and never records "
        "a refund on it. Empty: the credit is left at its status, noted 'do not refund' and the "
        "return flagged for staff.",
    )
    fee_nominal_code = models.CharField(
        LABELS["fee_nominal_code"],
        max_length=4,
        blank=True,
        validators=[nominal_code_validator],
        help_text="Nominal code for fee rows (restocking, return shipping). Empty: the "
        "account's sales nominal code.",
    )

    # --- Schedule and flows ----------------------------------------------------------------
    sync_interval_minutes = models.PositiveIntegerField(
        LABELS["sync_interval_minutes"],
        default=15,
        validators=[MinValueValidator(1, "The sync interval must be at least 1 minute.")],
    )
    # When the dispatcher (connector.tasks.dispatch_due_syncs) next queues a scheduled sync;
    # each connection keeps its own phase in the interval, so syncs are spread over it.
    next_sync_at = models.DateTimeField("next scheduled sync", null=True, blank=True, db_index=True)
    create_credits = models.BooleanField("create sales credits", default=True)
    record_refunds = models.BooleanField("record refunds", default=True)
    update_platform = models.BooleanField("process / flag returns on the platform", default=True)
    mark_shipments_received = models.BooleanField(
        "move shipments to Received on the platform",
        default=True,
        help_text="ReturnGO: when the goods arrive, move the return's shipment to Received "
        "before marking it Done — one call per return from ReturnGO's daily allowance. Off: "
        "only Done is set (about 2 calls per return instead of 3: about 900 returns a day "
        "instead of 650 on the default allowance).",
    )
    close_credits = models.BooleanField(
        "close credits once processed and refunded",
        default=False,
        help_text="Like Loop's integration: invoice the sales credit when the return is done.",
    )
    create_goods_in_when_processed_elsewhere = models.BooleanField(
        "receive in Brightpearl when processed on the platform",
        default=True,
        help_text="When a return is processed on the platform first, create the goods-in note.",
    )

    # --- Webhooks and state ----------------------------------------------------------------
    webhook_secret = EncryptedCharField(max_length=255, default=new_webhook_secret, editable=False)
    intake_token_hash = models.CharField(
        "intake API token (SHA-256)",
        max_length=64,
        blank=True,
        db_index=True,
        editable=False,
        help_text="Generic intake API: only a hash of the token is stored.",
    )
    webhooks_registered_at = models.DateTimeField(null=True, blank=True, editable=False)
    platform_watermark = models.DateTimeField(
        "platform polled up to",
        null=True,
        blank=True,
        editable=False,
        help_text="Newest platform update seen; the next poll starts a little before it.",
    )
    platform_polled_at = models.DateTimeField(
        "platform last listed",
        null=True,
        blank=True,
        editable=False,
        help_text="When a scheduled sync last listed the platform's changes (the safety-net "
        "poll, hourly while the platform's webhooks arrive).",
    )
    sync_lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    sync_lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set by every sync request; cleared by the run that serves it. A request that finds a run
    # holding the lease leaves it set, and that run takes another pass before it ends.
    sync_requested = models.BooleanField(default=False, editable=False)
    # Coalescing (connector/services/pending.py): set when an intake POST or webhook queued a
    # sync task; cleared by that task when it starts. While set, further requests queue nothing.
    sync_queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A run asked for later than a broker countdown should carry (a follow-up, a retry's
    # backoff): the housekeeping dispatcher queues it when due (connector/schedules.py).
    sync_due_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)
    duplicates_checked_at = models.DateTimeField(
        "checked for duplicate credits up to", null=True, blank=True, editable=False
    )
    last_check_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_check_ok = models.BooleanField(null=True, editable=False)
    last_check_report = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # Configuring is Django's change_connection; see connector/roles.py.
        permissions = [
            (
                "operate_connection",
                "Can operate connections (check, sync now, retry, reprocess, webhooks)",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:  # never include secrets
        return f"<Connection {self.pk} {self.name!r} {self.platform}→{self.brightpearl_account}>"

    def normalise(self) -> None:
        """Strip stray spaces from every text field: the most common setup fault."""
        for field in self._meta.concrete_fields:
            value = getattr(self, field.attname)
            if isinstance(value, str):
                setattr(self, field.attname, value.strip())

    def clean(self) -> None:
        self.normalise()
        errors = {}
        if self.brightpearl_auth_mode == AuthMode.PRIVATE_ACCOUNT_TOKEN:
            if not self.brightpearl_account_token:
                errors["brightpearl_account_token"] = "An account token is required for this mode."
        elif self.brightpearl_auth_mode == AuthMode.PRIVATE_STAFF_TOKEN:
            if not self.brightpearl_staff_token:
                errors["brightpearl_staff_token"] = "A staff token is required for this mode."
        elif self.brightpearl_auth_mode == AuthMode.OAUTH:
            if not self.brightpearl_dev_ref:
                errors["brightpearl_dev_ref"] = "OAuth needs the developer reference."
            if not (self.brightpearl_access_token or self.brightpearl_refresh_token):
                errors["brightpearl_refresh_token"] = (
                    "OAuth needs a refresh token (or an access token)."
                )
        spec = registry.find(self.platform)
        for field_name, message in (spec.required_settings if spec else {}).items():
            if not getattr(self, field_name):
                errors[field_name] = message
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs) -> None:
        self.normalise()
        super().save(*args, **kwargs)

    @property
    def brightpearl_account_key(self) -> str:
        """Brightpearl IDs are unique only within one account: this scopes them."""
        return account_key_for(self.brightpearl_account, self.brightpearl_datacentre)


class WarehouseMapping(models.Model):
    """Returns-platform destination → Brightpearl warehouse. No mapping: the original order's."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="warehouse_mappings"
    )
    destination_id = models.CharField(
        "platform destination ID",
        max_length=64,
        help_text="Loop destination ID / ReturnGO return location as the platform reports it.",
    )
    warehouse_id = models.PositiveIntegerField("Brightpearl warehouse ID", validators=POSITIVE)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "destination_id"], name="unique_destination_per_connection"
            )
        ]
        ordering = ["destination_id"]

    def __str__(self) -> str:
        return self.describe(*getattr(self, "names", ("", "")))

    def describe(self, destination_name: str = "", warehouse_name: str = "") -> str:
        """ "Loop destination 101 (Main DC) → Brightpearl warehouse 3 (Returns warehouse)";
        the names when the caller has them (the admin's cached lists)."""
        platform = registry.find(self.connection.platform) if self.connection_id else None
        where = f"{platform.label} destination" if platform else "Destination"
        destination = f"{where} {self.destination_id}" + (
            f" ({destination_name})" if destination_name else ""
        )
        warehouse = f"Brightpearl warehouse {self.warehouse_id}" + (
            f" ({warehouse_name})" if warehouse_name else ""
        )
        return f"{destination} → {warehouse}"

    def save(self, *args, **kwargs) -> None:
        self.destination_id = (self.destination_id or "").strip()
        super().save(*args, **kwargs)
