"""The operations console in a real browser: read the overview's counts, find an order from the
one search box and read its timeline, open a flagged return, retry a failed item and see its
problem close. Data made by real syncs against the sandboxes."""

from __future__ import annotations

import re

import pytest

from returns.models import Rma

pytestmark = pytest.mark.slow

CREDIT_POST = r"^/order-service/sales-credit/?$"


def count_on(page, label: str) -> int:
    tile = page.locator(f'a[data-count="{label}"] .console-count')
    return int(tile.inner_text())


def test_overview_counts_then_search_an_order_and_open_a_flagged_return(admin_page, world):
    sku = "SHIRT-" + world.bp.code
    credited = world.sale([(sku, 1, "20.00", "4.00")])
    world.loop_return(credited, [{"sku": sku}])
    flagged = world.sale([(sku, 1, "20.00", "4.00")])
    world.loop_return(flagged, [{"sku": sku}, {"sku": "NOT-SOLD-HERE"}])
    world.sync()
    page = admin_page
    page.goto(f"{page.base_url}/admin/")
    page.shot("overview")
    assert count_on(page, "Credited, awaiting goods") == 1
    assert count_on(page, "Flagged (needs staff)") == 1

    page.fill("#console-find", credited.order_name)
    page.press("#console-find", "Enter")
    page.wait_for_url(re.compile(r"/admin/returns/rma/\?q="))
    page.locator("#result_list tbody tr a").first.click()
    page.wait_for_selector("#console-timeline")
    page.shot("timeline")
    timeline = page.locator("#console-timeline").inner_text()
    assert "Return received from Loop" in timeline
    assert "Sales credit: succeeded" in timeline
    assert "Waiting for the warehouse to receive" in page.locator("#console-next-step").inner_text()

    page.goto(f"{page.base_url}/admin/")
    page.click('a[data-count="Flagged (needs staff)"]')
    page.locator("#result_list tbody tr a").first.click()
    page.wait_for_selector("#console-timeline")
    page.shot("flagged-return")
    assert (
        "Needs staff: SKU NOT-SOLD-HERE is not on original order"
        in page.locator("#console-next-step").inner_text()
    )
    assert page.locator("#console-clear-flag").is_visible()


def test_retry_a_failed_item_and_see_its_problem_close(admin_page, world, eager):
    sku = "HAT-" + world.bp.code
    sale = world.sale([(sku, 1, "30.00", "6.00")])
    world.loop_return(sale, [{"sku": sku}])
    world.bp.control.add_fault(CREDIT_POST, "error", method="POST", status=400, times=1)
    world.sync()
    rma = Rma.objects.get()
    page = admin_page
    page.goto(f"{page.base_url}/admin/connector/problem/")
    page.shot("open-problem")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "Brightpearl would not accept the sales credit" in rows.first.inner_text()

    page.locator("#result_list input.action-select").first.check()
    page.select_option("select[name=action]", "retry_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    page.shot("after-retry")
    assert f"RMA {rma.rma_number}: sales credit" in page.locator(".messagelist").inner_text()
    assert page.locator("#result_list").count() == 0 or rows.count() == 0  # none open now

    page.goto(f"{page.base_url}/admin/connector/problem/?state=resolved")
    resolved = page.locator("#result_list tbody tr").first.inner_text()
    assert "Resolved" in resolved and "succeeded" in resolved
