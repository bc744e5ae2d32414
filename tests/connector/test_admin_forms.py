"""The connection form speaks names: Brightpearl's and the platform's lists by name and ID, a
typed ID when they cannot be asked, and the Brightpearl check on every save button — before
anything is saved."""

import pytest
from django.urls import reverse

from connector.models import Connection
from connector.services.reference import forget_lists

pytestmark = pytest.mark.django_db

SAVE_BUTTONS = ["_save", "_continue", "_addanother"]


def change_url(connection):
    return reverse("admin:connector_connection_change", args=[connection.pk])


def posted_form(page, **overrides) -> dict:
    """What the browser would post back from a rendered change page, with `overrides`."""
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(value, bool) or getattr(field.widget, "input_type", "") == "checkbox":
            if value:
                data[name] = "on"
        elif value is not None and name not in Connection.SECRET_FIELDS:
            data[name] = str(value)
    for inline in page.context["inline_admin_formsets"]:  # mappings, banks, outcomes
        formset = inline.formset
        stored = [f for f in formset.forms if f.instance.pk]
        data.update(
            {
                f"{formset.prefix}-TOTAL_FORMS": str(len(stored)),
                f"{formset.prefix}-INITIAL_FORMS": str(len(stored)),
                f"{formset.prefix}-MIN_NUM_FORMS": "0",
                f"{formset.prefix}-MAX_NUM_FORMS": "1000",
            }
        )
        for i, row in enumerate(stored):
            for name in row.fields:
                value = row[name].value()
                if value not in (None, False):
                    data[f"{formset.prefix}-{i}-{name}"] = "on" if value is True else str(value)
    data.update(overrides)
    return data


def test_settings_are_offered_by_name_and_id(admin_client, world):
    world.loop.add_destination("Main DC", id=101)
    forget_lists(world.connection)  # the lists are cached per account: Loop's just changed
    world.connection.warehouse_mappings.create(destination_id="101", warehouse_id=3)
    html = admin_client.get(change_url(world.connection)).content.decode()
    assert "Returns centre (3)" in html  # a Brightpearl warehouse
    assert "Main DC (101)" in html  # a Loop destination
    assert "(1200)" in html  # the bank account refunds are paid from
    assert "Status of new sales credits" in html
    assert "platform API URL" not in html and "Warehouse id" not in html


def test_a_typed_id_still_works_when_brightpearl_cannot_be_asked(admin_client, world):
    world.connection.brightpearl_account_token = "not-the-token"
    world.connection.save()
    page = admin_client.get(change_url(world.connection))
    html = page.content.decode()
    assert "No list of warehouses shown: Brightpearl could not be asked" in html
    assert 'name="credit_status_id"' in html and '<select name="credit_status_id"' not in html


@pytest.mark.parametrize("button", SAVE_BUTTONS)
def test_every_save_button_refuses_a_warehouse_brightpearl_does_not_know(
    admin_client, world, button
):
    world.loop.add_destination("Main DC", id=101)
    forget_lists(world.connection)
    url = change_url(world.connection)
    data = posted_form(
        admin_client.get(url),
        **{
            button: "1",
            "warehouse_mappings-TOTAL_FORMS": "1",
            "warehouse_mappings-0-destination_id": "101",
            "warehouse_mappings-0-warehouse_id": "99",
        },
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Warehouse 99 (for destination 101) does not exist in Brightpearl." in html
    assert "changed successfully" not in html
    assert not world.connection.warehouse_mappings.exists()


@pytest.mark.parametrize("button", SAVE_BUTTONS)
def test_every_save_button_checks_and_reports_what_brightpearl_accepted(
    admin_client, world, button
):
    url = change_url(world.connection)
    data = posted_form(
        admin_client.get(url),
        **{
            button: "1",
            "warehouse_mappings-TOTAL_FORMS": "1",
            "warehouse_mappings-0-destination_id": "101",
            "warehouse_mappings-0-warehouse_id": "3",
        },
    )
    response = admin_client.post(url, data, follow=True)
    assert "Brightpearl accepted every setting" in response.content.decode()
    assert world.connection.warehouse_mappings.get().warehouse_id == 3
    world.connection.refresh_from_db()
    assert world.connection.last_check_ok is True


def test_an_unknown_status_is_an_error_on_its_field(admin_client, world):
    url = change_url(world.connection)
    response = admin_client.post(
        url, posted_form(admin_client.get(url), credit_status_id="777", _continue="1")
    )
    errors = response.context["adminform"].form.errors
    assert "Status 777 does not exist in Brightpearl." in errors["credit_status_id"]
    world.connection.refresh_from_db()
    assert world.connection.credit_status_id is None


def test_the_check_button_checks_the_saved_settings_and_says_so(admin_client, world):
    world.connection.warehouse_mappings.create(destination_id="101", warehouse_id=99)
    page = admin_client.get(change_url(world.connection)).content.decode()
    check = reverse("admin:connector_connection_check", args=[world.connection.pk])
    assert f'action="{check}"' in page
    response = admin_client.post(check, follow=True)
    html = response.content.decode()
    assert "Warehouse 99 (for destination 101) does not exist in Brightpearl." in html
    world.connection.refresh_from_db()
    assert world.connection.last_check_ok is False
    assert admin_client.get(check).status_code == 405  # a link never runs it


def refund_rows(banks=(), outcomes=()) -> dict:
    """Inline rows as typed on the page: (currency, bank code) and (outcome, treatment, method)."""
    data = {
        "refund_bank_accounts-TOTAL_FORMS": str(len(banks)),
        "refund_bank_accounts-INITIAL_FORMS": "0",
        "outcome_mappings-TOTAL_FORMS": str(len(outcomes)),
        "outcome_mappings-INITIAL_FORMS": "0",
    }
    for i, (currency, code) in enumerate(banks):
        data[f"refund_bank_accounts-{i}-currency"] = currency
        data[f"refund_bank_accounts-{i}-nominal_code"] = code
    for i, (outcome, treatment, method) in enumerate(outcomes):
        data[f"outcome_mappings-{i}-outcome"] = outcome
        data[f"outcome_mappings-{i}-treatment"] = treatment
        data[f"outcome_mappings-{i}-payment_method_code"] = method
    return data


def test_bank_accounts_and_payment_methods_are_picked_by_name(admin_client, world):
    world.connection.refund_bank_accounts.create(currency="USD", nominal_code="1230")
    page = admin_client.get(change_url(world.connection))
    html = page.content.decode()
    assert '<select name="refund_bank_accounts-0-nominal_code"' in html
    assert "US dollar bank account (1230)" in html
    assert "Gift card / store credit (GIFTCARD)" in html  # an outcome's payment method


@pytest.mark.parametrize("button", SAVE_BUTTONS)
def test_a_bank_account_in_the_wrong_currency_is_refused_as_typed(admin_client, world, button):
    url = change_url(world.connection)
    data = posted_form(admin_client.get(url), **{button: "1", **refund_rows([("EUR", "1230")])})
    response = admin_client.post(url, data)
    assert response.status_code == 200
    row_errors = response.context["inline_admin_formsets"][1].formset.forms[0].errors
    assert "Bank account 1230 is a USD account, not EUR." in row_errors["nominal_code"]
    assert "changed successfully" not in response.content.decode()
    assert not world.connection.refund_bank_accounts.exists()


def test_an_outcome_paid_into_the_refund_bank_is_refused_before_it_is_saved(admin_client, world):
    url = change_url(world.connection)
    typed = refund_rows(outcomes=[("store_credit", "payment_method", "BANK")])
    response = admin_client.post(url, posted_form(admin_client.get(url), _continue="1", **typed))
    row_errors = response.context["inline_admin_formsets"][2].formset.forms[0].errors
    assert "would be booked as money leaving the bank" in row_errors["payment_method_code"][0]
    assert not world.connection.outcome_mappings.exists()


def test_refund_rows_brightpearl_accepts_are_saved_and_reported(admin_client, world):
    url = change_url(world.connection)
    typed = refund_rows(
        [("usd", "1230")], outcomes=[("store_credit", "payment_method", "GIFTCARD")]
    )
    response = admin_client.post(
        url, posted_form(admin_client.get(url), _save="1", **typed), follow=True
    )
    assert "Brightpearl accepted every setting" in response.content.decode()
    world.connection.refresh_from_db()
    checked = {item["field"]: item["message"] for item in world.connection.last_check_report}
    assert checked["refund_bank_account[USD]"] == "USD refunds: bank account 1230 via USBANK."
    assert world.connection.refund_bank_accounts.get().nominal_code == "1230"
    assert world.connection.outcome_mappings.get().payment_method_code == "GIFTCARD"
