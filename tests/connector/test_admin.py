"""Staff configure connections in the admin: pages render, input is cleaned, secrets stay secret."""

import pytest
from django.contrib import admin
from django.db import connection as db
from django.urls import reverse

from connector.models import Connection, SyncRun
from tests.support.admin_forms import REFUND_INLINES

from .admin_roles import WEBHOOK_ADDRESS
from .factories import ConnectionFactory, WarehouseMappingFactory

pytestmark = pytest.mark.django_db

SECRET_VALUES = {
    "brightpearl_account_token": "bp-account-token-5f0c9a",
    "platform_api_key": "loop-key-77aa21",
    "platform_webhook_secret": "loop-webhook-secret-1b2c",
}


@pytest.fixture
def staff(admin_client):
    return admin_client


@pytest.fixture
def populated(django_capture_on_commit_callbacks):
    """One object of every kind the admin shows (a connection also creates its beat task)."""
    with django_capture_on_commit_callbacks(execute=True):
        connection = ConnectionFactory(**SECRET_VALUES)
    WarehouseMappingFactory(connection=connection)
    SyncRun.objects.create(connection=connection, status=SyncRun.Status.SUCCEEDED)
    return connection


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_every_admin_page_renders(staff, admin_user, rf, populated, model):
    request = rf.get("/")
    request.user = admin_user
    assert staff.get(admin_url(model, "changelist")).status_code == 200
    assert staff.get(admin_url(model, "changelist"), {"q": "shop"}).status_code == 200
    if admin.site._registry[model].has_add_permission(request):
        assert staff.get(admin_url(model, "add")).status_code == 200
    obj = model.objects.first()
    if obj is not None:
        assert staff.get(admin_url(model, "change", obj.pk)).status_code == 200


def form_data(**overrides):
    data = {
        "name": "Acme",
        "enabled": "on",
        "brightpearl_account": "acme",
        "brightpearl_datacentre": "euw1",
        "brightpearl_auth_mode": "private_account",
        "brightpearl_app_ref": "acme_returns",
        "brightpearl_account_token": "tok-123",
        "platform": "returngo",
        "platform_api_key": "rg-key-1",
        "platform_shop_name": "acme.myshopify.com",
        "refund_method_code": "1200",
        "sync_interval_minutes": "15",
        "create_credits": "on",
        "record_refunds": "on",
        "update_platform": "on",
        "warehouse_mappings-TOTAL_FORMS": "0",
        "warehouse_mappings-INITIAL_FORMS": "0",
        "warehouse_mappings-MIN_NUM_FORMS": "0",
        "warehouse_mappings-MAX_NUM_FORMS": "1000",
        **REFUND_INLINES,
    }
    data.update(overrides)
    return data


def test_stray_spaces_are_stripped_from_every_credential_and_code(staff):
    response = staff.post(
        admin_url(Connection, "add"),
        form_data(
            brightpearl_account="  acme ",
            brightpearl_app_ref=" acme_returns\t",
            brightpearl_account_token="  tok-123  ",
            platform_api_key=" rg-key-1 ",
            platform_shop_name=" acme.myshopify.com ",
            refund_method_code=" 1200 ",
            customer_ref_prefix=" RMA- ",
            **{
                "warehouse_mappings-TOTAL_FORMS": "1",
                "warehouse_mappings-0-destination_id": "  loc-1 ",
                "warehouse_mappings-0-warehouse_id": "3",
            },
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    saved = Connection.objects.get(name="Acme")
    assert saved.brightpearl_account == "acme"
    assert saved.brightpearl_app_ref == "acme_returns"
    assert saved.brightpearl_account_token == "tok-123"
    assert saved.platform_api_key == "rg-key-1"
    assert saved.platform_shop_name == "acme.myshopify.com"
    assert saved.refund_method_code == "1200"
    assert saved.customer_ref_prefix == "RMA-"
    assert saved.warehouse_mappings.get().destination_id == "loc-1"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("refund_method_code", "12a0", "4-digit bank account nominal code"),
        ("refund_method_code", "120", "4-digit bank account nominal code"),
        ("credit_status_id", "0", "positive whole number"),
        ("credit_status_id", "-4", "positive whole number"),
        ("credit_channel_id", "abc", "whole number"),
        ("received_status_id", "0", "positive whole number"),
        ("sync_interval_minutes", "0", "at least 1 minute"),
        ("brightpearl_account", "my account", "account code"),
        ("brightpearl_account_token", "", "account token is required"),
        ("platform_shop_name", "", "shop name"),
    ],
)
def test_malformed_fields_get_a_form_error_and_nothing_is_saved(staff, field, value, message):
    response = staff.post(admin_url(Connection, "add"), form_data(**{field: value}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert not Connection.objects.exists()


def test_secrets_are_encrypted_in_the_database(populated):
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT brightpearl_account_token, platform_api_key, platform_webhook_secret, "
            "webhook_secret FROM connector_connection WHERE id = %s",
            [populated.pk],
        )
        raw = cursor.fetchone()
    for stored, plain in zip(raw[:3], SECRET_VALUES.values(), strict=True):
        assert plain not in stored
        assert stored.startswith("gAAAA")  # a Fernet token
    assert populated.webhook_secret not in raw[3]
    reloaded = Connection.objects.get(pk=populated.pk)
    assert reloaded.brightpearl_account_token == SECRET_VALUES["brightpearl_account_token"]


def test_secrets_never_appear_in_admin_pages(staff, populated):
    pages = [
        staff.get(admin_url(Connection, "change", populated.pk)),
        staff.get(admin_url(Connection, "changelist")),
        staff.get(admin_url(Connection, "history", populated.pk)),
    ]
    for page in pages:
        html = WEBHOOK_ADDRESS.sub("", page.content.decode())  # shown on purpose, see there
        for secret in (*SECRET_VALUES.values(), populated.webhook_secret):
            assert secret not in html
    change_page = pages[0].content.decode()
    assert "set — leave blank to keep it" in change_page


def test_blank_secret_keeps_the_stored_one_and_clear_removes_it(staff, populated):
    url = admin_url(Connection, "change", populated.pk)
    mapping = populated.warehouse_mappings.get()
    data = form_data(
        name=populated.name,
        brightpearl_account=populated.brightpearl_account,
        brightpearl_account_token="",
        platform="loop",
        platform_api_key="",
        platform_shop_name="",
        platform_webhook_secret="",
        **{
            "warehouse_mappings-TOTAL_FORMS": "1",
            "warehouse_mappings-INITIAL_FORMS": "1",
            "warehouse_mappings-0-id": str(mapping.pk),
            "warehouse_mappings-0-connection": str(populated.pk),
            "warehouse_mappings-0-destination_id": mapping.destination_id,
            "warehouse_mappings-0-warehouse_id": "2",
        },
    )
    response = staff.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    populated.refresh_from_db()
    assert populated.brightpearl_account_token == SECRET_VALUES["brightpearl_account_token"]
    assert populated.platform_webhook_secret == SECRET_VALUES["platform_webhook_secret"]

    response = staff.post(url, {**data, "clear_platform_webhook_secret": "on"})
    assert response.status_code == 302
    populated.refresh_from_db()
    assert populated.platform_webhook_secret is None
    assert populated.platform_api_key == SECRET_VALUES["platform_api_key"]


def test_duplicate_destination_mapping_is_a_form_error(staff):
    response = staff.post(
        admin_url(Connection, "add"),
        form_data(
            **{
                "warehouse_mappings-TOTAL_FORMS": "2",
                "warehouse_mappings-0-destination_id": "loc-1",
                "warehouse_mappings-0-warehouse_id": "3",
                "warehouse_mappings-1-destination_id": "loc-1",
                "warehouse_mappings-1-warehouse_id": "4",
            }
        ),
    )
    assert response.status_code == 200
    assert not Connection.objects.exists()
    assert "Please correct the duplicate data for destination_id" in response.content.decode()


def test_saving_shows_the_brightpearl_check_and_keeps_the_connection(staff, sandbox_account):
    response = staff.post(
        admin_url(Connection, "add"),
        form_data(
            brightpearl_account=sandbox_account.code,
            brightpearl_app_ref=sandbox_account.app_ref,
            brightpearl_account_token="not-the-token",
        ),
        follow=True,
    )
    assert response.status_code == 200
    saved = Connection.objects.get(name="Acme")  # saved despite the failed check
    assert saved.last_check_ok is False
    page = response.content.decode()
    assert "Brightpearl refused the credentials" in page
    assert "not-the-token" not in page


def test_saving_good_settings_says_brightpearl_accepted_them(staff, sandbox_account):
    response = staff.post(
        admin_url(Connection, "add"),
        form_data(
            brightpearl_account=sandbox_account.code,
            brightpearl_app_ref=sandbox_account.app_ref,
            brightpearl_account_token=sandbox_account.account_token,
            credit_status_id="11",
        ),
        follow=True,
    )
    assert "Brightpearl accepted every setting" in response.content.decode()
    assert Connection.objects.get(name="Acme").last_check_ok is True


def test_destinations_action_lists_the_platforms_destinations_and_mappings(staff, world):
    world.loop.add_destination("Bristol returns", id=101)
    world.loop.add_destination("Leeds", id=102)
    world.connection.warehouse_mappings.create(destination_id="101", warehouse_id=3)
    response = staff.post(
        admin_url(Connection, "changelist"),
        {"action": "show_destinations", "_selected_action": [world.connection.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "101 &#x27;Bristol returns&#x27; → warehouse 3" in page
    assert "102 &#x27;Leeds&#x27; (not mapped)" in page


def _rows(prefix: str, rows: list[dict]) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows))}
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def test_refund_settings_are_edited_inline_and_cleaned(staff):
    response = staff.post(
        admin_url(Connection, "add"),
        form_data(
            **_rows("refund_bank_accounts", [{"currency": " usd ", "nominal_code": "1230"}]),
            **_rows(
                "outcome_mappings",
                [
                    {
                        "outcome": "store_credit",
                        "treatment": "payment_method",
                        "payment_method_code": " giftcard ",
                    },
                    {"outcome": "exchange", "treatment": "note", "payment_method_code": ""},
                ],
            ),
        ),
    )
    assert response.status_code == 302, response.context["inline_admin_formsets"]
    saved = Connection.objects.get(name="Acme")
    assert [(b.currency, b.nominal_code) for b in saved.refund_bank_accounts.all()] == [
        ("USD", "1230")
    ]
    mappings = {
        m.outcome: (m.treatment, m.payment_method_code) for m in saved.outcome_mappings.all()
    }
    assert mappings == {"store_credit": ("payment_method", "GIFTCARD"), "exchange": ("note", "")}


@pytest.mark.parametrize(
    ("prefix", "rows", "message"),
    [
        ("refund_bank_accounts", [{"currency": "US", "nominal_code": "1230"}], "3-letter ISO"),
        ("refund_bank_accounts", [{"currency": "USD", "nominal_code": "12a0"}], "4-digit"),
        (
            "refund_bank_accounts",
            [
                {"currency": "USD", "nominal_code": "1230"},
                {"currency": "USD", "nominal_code": "1200"},
            ],
            "duplicate",
        ),
        (
            "outcome_mappings",
            [{"outcome": "gift_card", "treatment": "payment_method", "payment_method_code": ""}],
            "Enter the payment method code",
        ),
        (
            "outcome_mappings",
            [{"outcome": "bonus", "treatment": "payment_method", "payment_method_code": "X"}],
            "Bonus above the credit",
        ),
        (
            "outcome_mappings",
            [{"outcome": "exchange", "treatment": "note", "payment_method_code": "BANK"}],
            "Only a customer payment",
        ),
    ],
)
def test_bad_refund_settings_get_a_form_error_and_nothing_is_saved(staff, prefix, rows, message):
    response = staff.post(admin_url(Connection, "add"), form_data(**_rows(prefix, rows)))
    assert response.status_code == 200
    errors = [
        str(error)
        for formset in response.context["inline_admin_formsets"]
        if formset.formset.prefix == prefix
        for error in [*formset.formset.errors, formset.formset.non_form_errors()]
    ]
    assert message in " ".join(errors), errors
    assert not Connection.objects.exists()
