"""Creating a connection in a real browser: a warehouse Brightpearl does not know is refused by
each save button, then the saved connection's mappings are picked from named lists."""

from __future__ import annotations

import pytest

from connector.models import Connection

pytestmark = pytest.mark.slow

BUTTONS = ("_save", "_continue", "_addanother")


def fill_new_connection(page, world, warehouse: str) -> None:
    """What a new merchant types; secrets are typed again after a refused save (a password
    input never renders its value back)."""
    page.fill("#id_name", "Browser shop")
    page.fill("#id_brightpearl_account", world.bp.code)
    page.fill("#id_brightpearl_app_ref", world.bp.app_ref)
    page.fill("#id_brightpearl_account_token", world.bp.account_token)
    page.select_option("#id_platform", "loop")
    page.fill("#id_platform_api_key", world.loop.api_key)
    page.fill("#id_platform_api_url", world.loop.api_url)
    page.fill("#id_refund_method_code", "1200")
    page.fill("#id_warehouse_mappings-0-destination_id", "101")
    page.fill("#id_warehouse_mappings-0-warehouse_id", warehouse)


def test_each_save_button_refuses_an_unknown_warehouse_then_mappings_are_picked_by_name(
    admin_page, world
):
    page = admin_page
    world.loop.add_destination("Main DC", id=101)
    world.loop.add_destination("Leeds", id=102)
    page.goto(f"{page.base_url}/admin/connector/connection/add/")
    # Only the chosen platform's own settings are shown (ReturnGO's shop name is not Loop's).
    page.select_option("#id_platform", "returngo")
    assert page.locator("#id_platform_shop_name").is_visible()
    page.select_option("#id_platform", "loop")
    assert not page.locator("#id_platform_shop_name").is_visible()
    assert page.locator("#id_platform_webhook_secret").is_visible()
    for button in BUTTONS:
        fill_new_connection(page, world, "99")
        page.locator(f"input[name={button}]").last.click()
        page.wait_for_load_state()
        errors = page.locator(".errorlist").all_inner_texts()
        assert any("Warehouse 99 (for destination 101) does not exist" in e for e in errors), (
            button,
            errors,
        )
        page.shot(f"refused-{button}")
    assert not Connection.objects.filter(name="Browser shop").exists()

    fill_new_connection(page, world, "3")
    page.locator("input[name=_continue]").last.click()
    page.wait_for_load_state()
    assert "Brightpearl accepted every setting" in page.locator(".messagelist").inner_text()

    # Saved: the mappings are now lists of names and IDs from Loop and Brightpearl.
    row = "#id_warehouse_mappings-1-"
    assert "Leeds (102)" in page.locator(f"{row}destination_id").inner_text()
    page.select_option(f"{row}destination_id", label="Leeds (102)")
    page.select_option(f"{row}warehouse_id", label="Main warehouse (2)")
    page.select_option("#id_credit_status_id", index=1)
    page.shot("picked")
    page.locator("input[name=_save]").last.click()
    page.wait_for_load_state()
    assert "Brightpearl accepted every setting" in page.locator(".messagelist").inner_text()
    saved = Connection.objects.get(name="Browser shop")
    assert {(m.destination_id, m.warehouse_id) for m in saved.warehouse_mappings.all()} == {
        ("101", 3),
        ("102", 2),
    }
    assert saved.credit_status_id is not None
