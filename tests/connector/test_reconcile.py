"""Reconciliation over real HTTP: the Loop sandbox holds the returns, the Brightpearl sandbox the
credits and payments (some made by the connector, one by "another integration", one by hand);
the report finds each kind of difference, exports them as CSV, and the fix makes exactly one
credit however often it is run."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from connector.models import SalesCredit, SyncRun
from connector.services import reconcile, reconcile_fix
from returns.models import Rma
from tests.support.world import World

pytestmark = pytest.mark.django_db

LINE = {"sku": "TEE-S", "price": "10.00", "tax": "2.00"}


def _sale_and_return(world: World, line: dict = LINE, **extra):
    sale = world.sale([(line["sku"], 1, "10.00", "2.00")])
    ret = world.loop_return(sale, [line], **extra)
    return sale, ret


def _window():
    now = timezone.now()
    return now - timedelta(hours=1), now + timedelta(minutes=5)


def _by_return(report, kind: str) -> dict[str, reconcile.Difference]:
    return {d.external_id: d for d in report.differences if d.kind == kind}


@pytest.fixture
def books(world: World):
    """One return of each kind, and one that agrees on both sides."""
    clean = _sale_and_return(world)[1]
    duplicated_sale, duplicated = _sale_and_return(world)
    mismatched = _sale_and_return(world, {**LINE, "price": "15.00", "tax": "3.00"})[1]
    unpaid = _sale_and_return(world)[1]
    overpaid = _sale_and_return(world)[1]
    cancelled = _sale_and_return(world)[1]
    world.loop.add_refund(clean["id"], "12.00")
    world.sync()  # credits for all six; the clean one's refund recorded
    missing = _sale_and_return(world)[1]  # arrives after the sync: no credit yet
    world.loop.add_refund(unpaid["id"], "12.00")  # refunded after the sync: no payment yet
    world.bp.control.seed(  # Brightpearl's Shopify app credits the same return again
        orders=[
            {
                "orderTypeCode": "SC",
                "parentOrderId": duplicated_sale.order_id,
                "contactId": world.contact_id,
                "reference": "#SHOPIFY-RETURN-1",
                "rows": [{"sku": "TEE-S", "quantity": 1, "net": "10.00", "tax": "2.00"}],
            }
        ]
    )
    overpaid_credit = SalesCredit.objects.get(rma__external_id=str(overpaid["id"])).credit_id
    answer = world.bp.post(
        "/accounting-service/customer-payment",
        {
            "transactionRef": "by-hand-1",
            "paymentMethodCode": "BANK",
            "paymentType": "PAYMENT",
            "orderId": overpaid_credit,
            "currencyIsoCode": "GBP",
            "amountPaid": "12.00",
            "paymentDate": timezone.now().isoformat(),
        },
    )
    assert answer.status_code == 200, answer.text
    world.loop.set_state(cancelled["id"], "cancelled")
    return {
        "clean": str(clean["id"]),
        "duplicated": str(duplicated["id"]),
        "mismatched": str(mismatched["id"]),
        "unpaid": str(unpaid["id"]),
        "overpaid": str(overpaid["id"]),
        "cancelled": str(cancelled["id"]),
        "missing": str(missing["id"]),
    }


def test_each_kind_of_difference_is_found_from_both_systems(world: World, books):
    report = reconcile.reconcile(world.connection, *_window())

    assert set(_by_return(report, reconcile.MISSING_CREDIT)) == {books["missing"]}
    assert _by_return(report, reconcile.MISSING_CREDIT)[books["missing"]].fix == "create_credit"
    duplicate = _by_return(report, reconcile.DUPLICATE_CREDIT)
    assert set(duplicate) == {books["duplicated"]}
    assert "another integration" in duplicate[books["duplicated"]].message
    mismatch = _by_return(report, reconcile.AMOUNT_MISMATCH)[books["mismatched"]]
    assert (mismatch.platform_amount, mismatch.brightpearl_amount) == (18, 12)
    assert set(_by_return(report, reconcile.MISSING_PAYMENT)) == {books["unpaid"]}
    assert set(_by_return(report, reconcile.PAYMENT_WITHOUT_REFUND)) == {books["overpaid"]}
    assert set(_by_return(report, reconcile.CREDIT_LEFT_OPEN)) == {books["cancelled"]}
    rows = {row.ret.external_id: row for row in report.rows}
    clean = rows[books["clean"]]
    assert clean.kinds == []
    assert (clean.ret.value, clean.credit_total, clean.refunded_total, clean.paid_total) == (
        12,
        12,
        12,
        12,
    )
    assert len(report.differences) == 6


def test_brightpearl_is_read_in_batches_not_per_return(world: World, books):
    world.bp.control.clear_requests()
    reconcile.reconcile(world.connection, *_window())
    paths = [r["path"] for r in world.bp.control.requests()]
    # Seven returns: one credit search, one credit GET, one payment search (all batched), and
    # one sales-order search for the return never credited (the others' orders are known).
    assert sum("/order-service/order-search" in p for p in paths) == 1
    assert sum("/order-service/sales-order-search" in p for p in paths) == 1
    assert sum("/order-service/sales-credit/" in p for p in paths) == 1
    assert sum("customer-payment-search" in p for p in paths) == 1
    assert not [r for r in world.bp.control.requests() if r["method"] != "GET"]


def test_original_orders_of_returns_never_credited_are_found_in_one_search(world: World):
    """Five returns the connector never saw: their orders are found the way the credit step
    finds them — one batched sales-order search by order name — not one search per return."""
    made = [_sale_and_return(world) for _ in range(5)]
    world.bp.control.clear_requests()

    report = reconcile.reconcile(world.connection, *_window())

    missing = _by_return(report, reconcile.MISSING_CREDIT)
    assert set(missing) == {str(ret["id"]) for _, ret in made}
    for sale, ret in made:  # each return's own order was found
        assert f"on order {sale.order_id}." in missing[str(ret["id"])].message
    paths = [r["path"] for r in world.bp.control.requests()]
    assert sum("/order-service/sales-order-search" in p for p in paths) == 1
    assert sum("/order-service/order-search" in p for p in paths) == 1  # their credits, batched
    assert len(paths) <= 3  # + one payment search at most; no read per return


def test_csv_lists_every_difference_with_both_amounts(world: World, books):
    report = reconcile.reconcile(world.connection, *_window())
    rows = list(csv.DictReader(io.StringIO(reconcile.report_csv(report))))
    assert sorted(r["kind"] for r in rows) == sorted(
        [
            "Missing credit",
            "Duplicate credit",
            "Amount mismatch",
            "Missing payment",
            "Payment without refund",
            "Credit left open",
        ]
    )
    mismatch = next(r for r in rows if r["kind"] == "Amount mismatch")
    assert (mismatch["platform amount"], mismatch["Brightpearl amount"]) == ("18.00", "12.00")
    assert mismatch["platform return ID"] == books["mismatched"]
    assert next(r for r in rows if r["kind"] == "Missing credit")["fix"] == "yes"


def test_fix_creates_exactly_one_credit_even_when_run_twice(world: World, books):
    before = len(world.credits())
    for _ in range(2):
        reconcile_fix.fix(world.connection, reconcile.FIX_CREDIT, books["missing"])
    assert len(world.credits()) == before + 1
    # Each fix is a run that beats while it works: one whose worker dies is closed as
    # interrupted by the dispatcher (leases.stale_runs), not left "running".
    fixes = SyncRun.objects.filter(message__startswith="Reconciliation fix")
    assert fixes.count() == 2 and all(run.heartbeat_at for run in fixes)
    after = reconcile.reconcile(world.connection, *_window())
    assert books["missing"] not in _by_return(after, reconcile.MISSING_CREDIT)


def test_fix_records_the_missing_payment_once(world: World, books):
    ret_id = books["unpaid"]
    report = reconcile.reconcile(world.connection, *_window())
    refund_id = _by_return(report, reconcile.MISSING_PAYMENT)[ret_id].refund_id
    for _ in range(2):
        reconcile_fix.fix(world.connection, reconcile.FIX_PAYMENT, ret_id, refund_id)
    credit = SalesCredit.objects.get(rma__external_id=ret_id).credit_id
    assert len([p for p in world.payments() if p["orderId"] == credit]) == 1
    after = reconcile.reconcile(world.connection, *_window())
    assert ret_id not in _by_return(after, reconcile.MISSING_PAYMENT)


def test_a_credit_by_another_integration_makes_the_missing_credit_unfixable(world: World):
    sale, ret = _sale_and_return(world)
    world.bp.control.seed(
        orders=[
            {
                "orderTypeCode": "SC",
                "parentOrderId": sale.order_id,
                "contactId": world.contact_id,
                "reference": "#SHOPIFY-RETURN-2",
            }
        ]
    )
    report = reconcile.reconcile(world.connection, *_window())
    missing = _by_return(report, reconcile.MISSING_CREDIT)[str(ret["id"])]
    assert missing.fix == ""
    assert "another integration" in missing.message
    before = len(world.credits())
    with pytest.raises(reconcile_fix.NotFixable):
        reconcile_fix.fix(world.connection, reconcile.FIX_CREDIT, str(ret["id"]))
    assert len(world.credits()) == before


def _page(world: World, role: str, **query):
    from django.urls import reverse

    from tests.connector.admin_roles import client_for, staff_user

    url = reverse("admin:connector_connection_reconcile", args=[world.connection.pk])
    return client_for(staff_user(role)), url, query


def test_admin_page_shows_differences_csv_and_a_fix_for_operators_only(world: World, books):
    start, end = (m.date().isoformat() for m in _window())
    client, url, _ = _page(world, "view")
    page = client.get(url, {"from": start, "to": end})
    assert page.status_code == 200
    text = page.content.decode()
    assert "6 differences in 7 returns" in text
    assert 'name="fix"' not in text  # viewers see no fix button
    download = client.get(url, {"from": start, "to": end, "format": "csv"})
    assert download["Content-Type"].startswith("text/csv")
    assert "Credit left open" in download.content.decode()
    fix_url = url + "fix/"
    fix = {"fix": "create_credit", "external_id": books["missing"], "from": start, "to": end}
    assert client.post(fix_url, fix).status_code == 403
    operator, _, _ = _page(world, "operate")
    assert 'name="fix"' in operator.get(url, {"from": start, "to": end}).content.decode()
    before = len(world.credits())
    for _ in range(2):
        assert operator.post(fix_url, fix).status_code == 302
    assert len(world.credits()) == before + 1


def test_command_prints_the_window_and_writes_the_csv(world: World, books, tmp_path):
    from django.core.management import CommandError, call_command

    start, end = (m.date().isoformat() for m in _window())
    out, target = io.StringIO(), tmp_path / "diff.csv"
    name = world.connection.name
    call_command(
        "connector_reconcile", name, "--from", start, "--to", end, csv=str(target), stdout=out
    )
    assert "7 returns, 6 differences" in out.getvalue()
    assert len(list(csv.DictReader(target.open()))) == 6
    out = io.StringIO()
    call_command("connector_reconcile", name, "--from", start, "--to", end, "--fix", stdout=out)
    assert "7 returns, 4 differences" in out.getvalue()  # missing credit and payment made
    with pytest.raises(CommandError, match="not a date"):
        call_command("connector_reconcile", name, "--from", "yesterday", "--to", end)


def test_returngo_refunds_are_matched_to_their_payments(rg_world: World):
    """ReturnGO: the RMA read by creation date, its transactions as refunds; one refund paid,
    one made after the last sync and missing — fixed once."""
    rg = rg_world.returngo
    sale = rg_world.sale([("CAP-1", 2, "20.00", "4.00")])
    record = rg.add_rma(
        items=[{"sku": "CAP-1", "quantity": 2, "price": "10.00", "tax": "2.00"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        fire=False,
    )
    number = record["rmaSummary"]["rmaId"]
    rg.add_transaction(number, "12.00")
    rg_world.sync()
    late = rg.add_transaction(number, "12.00")
    report = reconcile.reconcile(rg_world.connection, *_window())
    [row] = report.rows
    assert (row.ret.value, row.credit_total, row.refunded_total, row.paid_total) == (24, 24, 24, 12)
    [missing] = report.differences
    assert (missing.kind, missing.refund_id, missing.fix) == (
        reconcile.MISSING_PAYMENT,
        late["id"],
        "record_refund",
    )
    for _ in range(2):
        reconcile_fix.fix(rg_world.connection, missing.fix, missing.external_id, missing.refund_id)
    assert reconcile.reconcile(rg_world.connection, *_window()).differences == []
    assert len(rg_world.payments()) == 2


def test_store_credit_noted_on_the_credit_is_not_a_missing_payment(world: World):
    """Store credit is noted, not paid (docs/refund-outcomes.md): reconciliation expects no
    payment for it, while money back on the same connection still needs one."""
    sku = "COAT-" + world.bp.code
    sale = world.sale([(sku, 1, "50.00", "10.00")])
    ret = world.loop.add_return(
        lines=[{"sku": sku, "price": "60.00", "outcome": "store_credit"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        fire=False,
    )
    world.sync()
    rma = Rma.objects.get(connection=world.connection, external_id=str(ret["id"]))
    world.bp.control.receive(rma.sales_credit.credit_id)
    world.sync()  # received → processed on Loop, which issues the gift card
    world.sync()  # … taken in: noted on the credit, no payment
    assert rma.refunds.get().outcome == "store_credit"
    unpaid = _sale_and_return(world)[1]
    world.sync()
    world.loop.add_refund(unpaid["id"], "12.00")  # money back after the sync: no payment yet

    report = reconcile.reconcile(world.connection, *_window())

    assert set(_by_return(report, reconcile.MISSING_PAYMENT)) == {str(unpaid["id"])}
