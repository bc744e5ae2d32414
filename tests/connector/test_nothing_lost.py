"""Nothing lost, nothing twice, across accounts, retries, configuration faults, overlapping
requests and credits made behind the connector's back — against the Brightpearl and Loop
sandboxes over real HTTP."""

import threading
import time

import pytest

from connector.models import (
    BindingState,
    Connection,
    RefundPayment,
    SalesCredit,
    SyncEvent,
    SyncRun,
)
from connector.services.leases import acquire_run_lease
from connector.services.retry import retry_items
from returns.models import Rma

from .factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def rma_for(world, loop_return) -> Rma:
    return Rma.objects.get(connection=world.connection, external_id=str(loop_return["id"]))


def _credit_of_another_connection(connection: Connection, parent_order_id: int, units: dict):
    """A credit another connection already made on an order with the same Brightpearl ID."""
    other_rma = Rma.objects.create(
        connection=connection, platform="loop", external_id=f"other-{parent_order_id}"
    )
    return SalesCredit.objects.create(
        connection=connection,
        account_key=connection.brightpearl_account_key,
        rma=other_rma,
        external_ref=f"rbc:{connection.pk}:loop:other",
        parent_order_id=parent_order_id,
        credit_id=999,
        state=BindingState.CREATED,
        order_row_units={str(k): str(v) for k, v in units.items()},
    )


def test_credits_of_another_account_with_the_same_order_ids_are_not_counted(world):
    """Brightpearl order IDs are unique only within one account: merchant B's credit on *its*
    order 100 must not use up the units of merchant A's order 100."""
    sku = "MUG-" + world.bp.code
    sale = world.sale([(sku, 2, "20.00", "4.00")])
    other = ConnectionFactory(brightpearl_account="another-merchant")
    assert other.brightpearl_account_key != world.connection.brightpearl_account_key
    _credit_of_another_connection(other, sale.order_id, {sale.row_ids[0]: 2})
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 2}])
    world.sync()
    rma = rma_for(world, loop_return)
    assert not rma.flagged, rma.flag_reason
    assert rma.status == "credited"
    assert [c["parentOrderId"] for c in world.credits()] == [sale.order_id]


def test_credits_of_another_connection_on_the_same_account_are_counted(world):
    """Two connections (e.g. two shops) on one Brightpearl account share its orders: units one
    already credited cannot be credited again by the other."""
    sku = "JUG-" + world.bp.code
    sale = world.sale([(sku, 2, "20.00", "4.00")])
    sibling = ConnectionFactory(
        brightpearl_account=world.connection.brightpearl_account.upper(),  # same account
        brightpearl_datacentre=world.connection.brightpearl_datacentre,
    )
    _credit_of_another_connection(sibling, sale.order_id, {sale.row_ids[0]: 2})
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 2}])
    world.sync()
    rma = rma_for(world, loop_return)
    assert rma.flagged
    assert "2 already credited" in rma.flag_reason
    assert world.credits() == []


def test_three_returns_of_one_unit_credit_the_row_to_the_cent(world):
    sku = "LAMP-" + world.bp.code
    sale = world.sale([(sku, 3, "10.00", "2.00")])
    for _ in range(3):
        world.loop_return(sale, [{"sku": sku, "quantity": 1}])
        world.sync()
    bindings = list(SalesCredit.objects.filter(parent_order_id=sale.order_id))
    assert len(bindings) == 3 and all(b.state == BindingState.CREATED for b in bindings)
    nets = sorted(row["net"] for b in bindings for row in b.planned_rows)
    taxes = sorted(row["tax"] for b in bindings for row in b.planned_rows)
    assert nets == ["3.33", "3.33", "3.34"]
    assert taxes == ["0.66", "0.67", "0.67"]
    assert len([c for c in world.credits() if c["parentOrderId"] == sale.order_id]) == 3


def test_a_retried_return_that_still_has_its_problem_is_flagged_again_not_stuck(world):
    sku = "SOCK-" + world.bp.code
    sale = world.sale([(sku, 1, "5.00", "1.00")])
    loop_return = world.loop_return(sale, [{"sku": "NOT-SOLD-" + world.bp.code}])
    world.sync()
    rma = rma_for(world, loop_return)
    assert rma.flagged and "is not on original order" in rma.flag_reason
    reason = rma.flag_reason
    assert SalesCredit.objects.get(rma=rma).state == BindingState.BLOCKED

    outcome = retry_items([rma.pk], user="sam")
    assert outcome.queued == [f"RMA {rma.rma_number}: sales credit (its flag is re-checked)"]
    assert SyncEvent.objects.filter(rma=rma, kind="retry", message__contains="sam").exists()
    run = world.sync()
    rma.refresh_from_db()
    binding = SalesCredit.objects.get(rma=rma)
    assert rma.flagged and rma.flag_reason == reason  # re-checked: still true, said again
    assert binding.state == BindingState.BLOCKED  # not left "attempting" forever
    assert run.events.filter(kind="credit", outcome="flagged", message=reason).exists()
    assert world.credits() == []
    # The platform already has this reason: it is not sent twice.
    assert world.loop.actions_for(loop_return["id"]).count("flag") <= 1


def test_a_refund_no_payment_method_can_take_fails_with_the_reason_and_is_not_retried(world):
    """A USD refund on a connection whose refund bank account (1200) is a GBP bank: no payment
    method can record it. That is configuration: failed with the reason, once."""
    sku = "HAT-" + world.bp.code
    sale = world.sale([(sku, 1, "20.00", "4.00")], currencyCode="USD")
    loop_return = world.loop.add_return(
        lines=[{"sku": sku}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="USD",
        fire=False,
    )
    world.sync()
    rma = rma_for(world, loop_return)
    world.bp.control.receive(rma.sales_credit.credit_id)
    world.sync()  # received → processed on Loop → Loop refunds in USD
    world.sync()  # the refund is pulled and cannot be recorded
    payment = RefundPayment.objects.get(refund__rma=rma)
    assert payment.state == BindingState.FAILED
    assert "USD" in payment.last_error and "1200" in payment.last_error
    failures = SyncEvent.objects.filter(rma=rma, kind="refund", outcome="failed")
    assert failures.count() == 1
    world.sync()
    world.sync()
    assert failures.count() == 1  # not retried every run
    assert world.payments() == []


@pytest.mark.django_db(transaction=True)
def test_a_return_arriving_during_a_running_sync_is_credited_by_that_run(world, postgres):
    sku = "PEN-" + world.bp.code
    first_sale = world.sale([(sku, 1, "4.00", "0.80")])
    world.loop_return(first_sale, [{"sku": sku}])
    second_sale = world.sale([(sku, 1, "4.00", "0.80")])
    world.bp.control.set_latency(0.3)  # a slow Brightpearl: the first run takes seconds
    result = {}

    def long_run():
        from django.db import connection as db

        try:
            result["run"] = world.sync()
        finally:
            db.close()

    runner = threading.Thread(target=long_run)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        # Once the first return is stored, the run has read the platform's list: a return
        # added now can only be seen by another pass.
        while not Rma.objects.filter(connection=world.connection).exists():
            assert time.monotonic() < deadline, "the first run never pulled"
            time.sleep(0.02)
        late = world.loop_return(second_sale, [{"sku": sku}])  # arrives mid-run…
        skipped = world.sync()  # …and its sync request finds the lease held
        assert skipped.status == SyncRun.Status.SKIPPED and skipped.pk is None
    finally:
        runner.join(timeout=60)
        world.bp.control.set_latency(0)
    run = result["run"]
    assert "2 passes" in run.message
    assert rma_for(world, late).status == "credited"
    assert sorted(c["parentOrderId"] for c in world.credits()) == sorted(
        [first_sale.order_id, second_sale.order_id]
    )
    assert not Connection.objects.get(pk=world.connection.pk).sync_requested


def test_a_request_that_finds_a_dead_runs_lease_asks_for_a_run_when_it_lapses(
    world, django_capture_on_commit_callbacks
):
    assert acquire_run_lease(world.connection.pk, "task-of-a-dead-host")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = world.sync()
        second = world.sync()
    assert first.status == second.status == SyncRun.Status.SKIPPED
    assert len(callbacks) == 1  # one follow-up, however many requests pile up
    assert SyncRun.objects.count() == 0  # skipped requests are not stored as rows


def test_the_sync_service_says_when_to_follow_up_and_queues_nothing_itself(
    world, django_capture_on_commit_callbacks
):
    assert acquire_run_lease(world.connection.pk, "task-of-a-dead-host")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first, second = world.sync_result(), world.sync_result()
    assert not callbacks  # the service enqueues nothing: its caller does (tasks.after_sync)
    assert first.follow_up_at is not None  # when the dead run's lease lapses
    assert second.follow_up_at is None  # the first request already asked


def _duplicate_by_another_integration(world, sale, loop_return, binding):
    """What Brightpearl's Shopify app would make: same order, same reference."""
    return world.bp.post(
        "/order-service/sales-credit/",
        {
            "customer": {"id": world.contact_id},
            "parentId": sale.order_id,
            "ref": binding.customer_ref,
            "rows": [
                {
                    "productId": world.products[sale.skus[0]],
                    "name": "x",
                    "quantity": "1",
                    "taxCode": "T20",
                    "net": "8.00",
                    "tax": "1.60",
                }
            ],
        },
    ).json()["response"]


def _credited(world, sku):
    sale = world.sale([(sku, 1, "8.00", "1.60")])
    loop_return = world.loop_return(sale, [{"sku": sku}])
    world.sync()
    return sale, loop_return, SalesCredit.objects.get(rma=rma_for(world, loop_return))


def test_a_second_live_credit_for_a_return_is_reported_once(world):
    sale, loop_return, binding = _credited(world, "CUP-" + world.bp.code)
    extra = _duplicate_by_another_integration(world, sale, loop_return, binding)
    run = world.sync()
    report = run.events.get(kind="duplicate")
    assert report.outcome == "failed" and report.credit_id == extra
    assert str(binding.credit_id) in report.message and "Do not refund" in report.message
    world.sync()
    assert SyncEvent.objects.filter(kind="duplicate").count() == 1  # not every run
    statuses = {c["id"]: c["orderStatus"]["orderStatusId"] for c in world.credits()}
    assert statuses[extra] == statuses[binding.credit_id]  # nothing moved: not configured


def test_a_second_live_credit_is_moved_to_the_configured_status_with_a_note(world):
    world.connection.duplicate_credit_status_id = 14  # "Credit cancelled" in the sandbox
    world.connection.save()
    sale, loop_return, binding = _credited(world, "BOOT-" + world.bp.code)
    extra = _duplicate_by_another_integration(world, sale, loop_return, binding)
    run = world.sync()
    assert "Moved" in run.events.get(kind="duplicate").message
    credits = {c["id"]: c for c in world.credits()}
    assert credits[extra]["orderStatus"]["orderStatusId"] == 14
    assert credits[binding.credit_id]["orderStatus"]["orderStatusId"] != 14  # never touched
    notes = [
        n["text"] for n in world.bp.control.state().get("orderNotes", []) if n["orderId"] == extra
    ]
    assert any("Duplicate of sales credit" in text for text in notes), notes


def test_a_retried_return_whose_problem_was_fixed_is_credited_and_unflagged(world):
    """The original order reached Brightpearl late (e.g. the shop connector lagged): flagged
    at first, credited after staff retry once it is there."""
    sku = "BELT-" + world.bp.code
    loop_return = world.loop.add_return(
        lines=[{"sku": sku}],
        order_name="#LATE-" + world.bp.code,
        order_id="shop-late-" + world.bp.code,
        currency="GBP",
        fire=False,
    )
    world.sync()
    rma = rma_for(world, loop_return)
    assert rma.flagged and "was not found in Brightpearl" in rma.flag_reason
    assert SalesCredit.objects.get(rma=rma).state == BindingState.BLOCKED

    world.product(sku)
    world.bp.control.seed(
        orders=[
            {
                "contactId": world.contact_id,
                "reference": "#LATE-" + world.bp.code,
                "externalRef": "shop-late-" + world.bp.code,
                "warehouseId": 2,
                "rows": [
                    {"sku": sku, "quantity": 1, "net": "9.00", "tax": "1.80", "taxCode": "T20"}
                ],
            }
        ]
    )
    world.sync()  # nobody asked for a re-check: it stays flagged, nothing is guessed
    rma.refresh_from_db()
    assert rma.flagged and world.credits() == []

    retry_items([rma.pk], user="sam")
    run = world.sync()
    rma.refresh_from_db()
    assert not rma.flagged and rma.status == "credited", (rma.status, rma.flag_reason)
    assert len(world.credits()) == 1
    assert run.events.filter(kind="credit", outcome="succeeded").exists()


def test_a_refund_recorded_twice_in_brightpearl_is_reported(world):
    sku = "SCARF-" + world.bp.code
    sale = world.sale([(sku, 1, "15.00", "3.00")])
    loop_return = world.loop_return(sale, [{"sku": sku}])
    world.sync()
    rma = rma_for(world, loop_return)
    world.bp.control.receive(rma.sales_credit.credit_id)
    world.sync()
    world.sync()  # the refund becomes a payment
    payment = RefundPayment.objects.get(refund__rma=rma, state=BindingState.CREATED)
    # Someone records the same refund again by hand, through another payment method.
    world.bp.post(
        "/accounting-service/customer-payment/",
        {
            "transactionRef": payment.transaction_ref,
            "paymentMethodCode": "PAYPAL",
            "paymentType": "PAYMENT",
            "orderId": rma.sales_credit.credit_id,
            "currencyIsoCode": "GBP",
            "amountPaid": "18.00",
            "paymentDate": "2026-12-01T10:00:00+00:00",
        },
    )
    run = world.sync()
    report = run.events.get(kind="duplicate")
    assert report.outcome == "failed"
    assert f"besides {payment.payment_id}" in report.message
    world.sync()
    assert SyncEvent.objects.filter(kind="duplicate").count() == 1


def test_reference_data_is_read_once_per_account_not_every_run(world):
    """Quarantine/warehouse locations and the refund payment method are cached per account."""
    reads = ("/location", "/payment-method", "/nominal-code-search")

    def reference_reads():
        return sum(
            1
            for r in world.bp.control.requests()
            if r["method"] == "GET" and any(part in r["path"] for part in reads)
        )

    for n in range(2):
        sku = f"TILE{n}-{world.bp.code}"
        sale = world.sale([(sku, 1, "6.00", "1.20")])
        loop_return = world.loop_return(sale, [{"sku": sku}])
        world.sync()
        world.bp.control.receive(rma_for(world, loop_return).sales_credit.credit_id)
        world.sync()
        world.sync()  # refund recorded
        if n == 0:
            after_first = reference_reads()
    assert after_first > 0
    assert reference_reads() == after_first  # the second return read none of it again
    assert len(world.payments()) == 2


def test_a_credit_whose_rows_were_never_read_back_is_still_received(world):
    """The run that made the credit died before reading its rows back (or the read failed):
    the receipt step reads them then, instead of flagging the goods as not on the return."""
    sku = "GLOVE-" + world.bp.code
    sale = world.sale([(sku, 2, "16.00", "3.20")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 2}])
    world.sync()
    binding = SalesCredit.objects.get(rma=rma_for(world, loop_return))
    assert binding.row_map
    SalesCredit.objects.filter(pk=binding.pk).update(row_map={})  # as a killed run left it
    world.bp.control.receive(binding.credit_id)
    world.sync()
    rma = rma_for(world, loop_return)
    assert not rma.flagged, rma.flag_reason
    assert rma.status == "processed"
    assert SalesCredit.objects.get(pk=binding.pk).row_map == binding.row_map
