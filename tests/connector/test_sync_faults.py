"""Exactly once, whatever fails: every fault the Brightpearl sandbox can inject ends with one
credit per RMA and one payment per refund."""

import threading
import time

import pytest

from connector.models import BindingState, SalesCredit, SyncRun
from connector.services.leases import acquire_run_lease
from returns.models import Rma

pytestmark = pytest.mark.django_db

CREDIT_POST = r"^/order-service/sales-credit/?$"
PAYMENT_POST = r"^/accounting-service/customer-payment/?$"


def approved_return(world, sku_prefix="ITEM"):
    sku = f"{sku_prefix}-{world.bp.code}"
    sale = world.sale([(sku, 2, "20.00", "4.00")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 2}])
    return sale, loop_return


def credits_for(world, sale):
    return [c for c in world.credits() if c["parentOrderId"] == sale.order_id]


def test_commit_then_drop_on_the_credit_post_adopts_the_credit(world):
    sale, loop_return = approved_return(world)
    world.bp.control.add_fault(CREDIT_POST, "drop", method="POST", times=1)
    run = world.sync()
    assert len(credits_for(world, sale)) == 1
    binding = SalesCredit.objects.get()
    assert binding.state == BindingState.CREATED and binding.adopted
    assert binding.credit_id == credits_for(world, sale)[0]["id"]
    assert run.status == SyncRun.Status.SUCCEEDED
    world.sync()
    assert len(credits_for(world, sale)) == 1


def test_server_error_on_the_credit_post_is_retried_after_a_search(world):
    sale, _ = approved_return(world)
    world.bp.control.add_fault(CREDIT_POST, "error", method="POST", status=500, times=1)
    run = world.sync()
    assert run.status == SyncRun.Status.PARTIAL
    assert credits_for(world, sale) == []
    assert SalesCredit.objects.get().state == BindingState.ATTEMPTING
    # Brightpearl answered (it has finished): no lease to wait for, the next run searches first.
    message = run.events.get(kind="credit").message
    assert "The next run searches Brightpearl for it first." in message
    assert "until" not in message
    world.sync()
    assert len(credits_for(world, sale)) == 1
    assert SalesCredit.objects.get().state == BindingState.CREATED


def credit_posts(world) -> int:
    return sum(
        1
        for r in world.bp.control.requests()
        if r["method"] == "POST" and r["path"].rstrip("/").endswith("/order-service/sales-credit")
    )


def test_delay_past_the_client_timeout_never_duplicates(world, settings):
    settings.BRIGHTPEARL_TIMEOUT = 0.5
    settings.CREDIT_ATTEMPT_LEASE_SECONDS = 2
    sale, _ = approved_return(world)
    world.bp.control.add_fault(CREDIT_POST, "delay", method="POST", seconds=1.5, times=1)
    world.sync()
    time.sleep(2.2)  # the delayed POST completes at the sandbox, and its lease ends
    world.sync()
    world.sync()
    assert len(credits_for(world, sale)) == 1
    assert SalesCredit.objects.get().state == BindingState.CREATED


def test_a_sync_while_a_timed_out_credit_post_is_still_executing_does_not_post_again(
    world, settings
):
    """A private app (no installedIntegrationInstanceId: Brightpearl has no duplicate guard).
    The first POST times out on our side and commits later; a sync that starts meanwhile —
    e.g. queued by a refund arriving — must not POST a second credit."""
    assert world.connection.brightpearl_installed_integration_instance_id is None
    settings.BRIGHTPEARL_TIMEOUT = 0.5
    settings.CREDIT_ATTEMPT_LEASE_SECONDS = 3
    sale, _ = approved_return(world)
    world.bp.control.add_fault(CREDIT_POST, "delay", method="POST", seconds=2, times=1)
    first = world.sync()
    assert first.status == SyncRun.Status.PARTIAL
    second = world.sync()  # the first POST is still executing at Brightpearl
    skipped = second.events.get(kind="credit")
    assert skipped.outcome == "skipped" and "may still be finishing" in skipped.message
    time.sleep(3.2)  # the first POST committed at ~2 s; the lease (from the send) ends at 3 s
    third = world.sync()
    assert credit_posts(world) == 1
    assert len(credits_for(world, sale)) == 1
    binding = SalesCredit.objects.get()
    assert binding.state == BindingState.CREATED and binding.adopted
    assert "adopted" in third.events.get(kind="credit").message


def test_the_lease_of_a_timed_out_post_outlives_the_run_that_sent_it(world, settings):
    """Ending the run (releasing its attempts) must not release the in-flight write."""
    settings.BRIGHTPEARL_TIMEOUT = 0.5
    settings.CREDIT_ATTEMPT_LEASE_SECONDS = 60
    approved_return(world)
    world.bp.control.add_fault(CREDIT_POST, "delay", method="POST", seconds=1, times=1)
    world.sync()
    binding = SalesCredit.objects.get()
    assert binding.state == BindingState.ATTEMPTING and binding.attempt_owner == ""
    assert binding.attempt_started_at is not None
    for _ in range(3):
        world.sync()
    time.sleep(1.2)  # the sandbox logs the delayed POST when it finishes
    assert credit_posts(world) == 1
    assert len(world.credits()) == 1


def test_brightpearl_validation_error_is_recorded_and_not_retried(world):
    world.connection.credit_channel_id = 999  # no such channel: Brightpearl answers 400
    world.connection.save()
    sale, loop_return = approved_return(world)
    run = world.sync()
    binding = SalesCredit.objects.get()
    assert binding.state == BindingState.FAILED
    assert "channel" in binding.last_error.lower()
    assert run.status == SyncRun.Status.PARTIAL
    posts = lambda: sum(  # noqa: E731
        1
        for r in world.bp.control.requests()
        if r["method"] == "POST" and "sales-credit" in r["path"]
    )
    before = posts()
    world.sync()
    assert posts() == before  # a 4xx is never retried by itself


def _processed_and_refunded(world):
    sale, loop_return = approved_return(world)
    world.sync()
    binding = SalesCredit.objects.get()
    world.bp.control.receive(binding.credit_id)
    world.sync()  # received → processed on Loop → Loop refunds
    return binding


def test_commit_then_drop_on_the_payment_post_records_one_payment(world):
    binding = _processed_and_refunded(world)
    world.bp.control.add_fault(PAYMENT_POST, "drop", method="POST", times=1)
    world.sync()
    world.sync()
    payments = [p for p in world.payments() if p["orderId"] == binding.credit_id]
    assert len(payments) == 1


def test_server_error_on_the_payment_post_records_one_payment(world, settings):
    settings.CREDIT_ATTEMPT_LEASE_SECONDS = 1
    binding = _processed_and_refunded(world)
    # A gateway's 502: Brightpearl may still be executing the payment behind it.
    world.bp.control.add_fault(PAYMENT_POST, "error", method="POST", status=502, times=1)
    world.sync()
    world.sync()  # within the lease: nothing is sent
    assert [p for p in world.payments() if p["orderId"] == binding.credit_id] == []
    time.sleep(1.1)
    world.sync()
    world.sync()
    payments = [p for p in world.payments() if p["orderId"] == binding.credit_id]
    assert len(payments) == 1


def test_an_overlapping_run_is_skipped(world):
    approved_return(world)
    assert acquire_run_lease(world.connection.pk, "someone-else")
    run = world.sync()
    assert run.status == SyncRun.Status.SKIPPED
    assert "already running" in run.message
    assert world.credits() == []


@pytest.mark.django_db(transaction=True)
def test_two_runs_started_at_once_one_runs_one_skips(world, postgres):
    sale, _ = approved_return(world)
    # Slow Brightpearl down so the first run is still going when the second starts.
    world.bp.control.set_latency(0.2)
    results = []
    barrier = threading.Barrier(2)

    def go():
        from django.db import connection as db

        barrier.wait()
        try:
            results.append(world.sync().status)
        finally:
            db.close()

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    world.bp.control.set_latency(0)
    assert sorted(results) == [SyncRun.Status.SKIPPED, SyncRun.Status.SUCCEEDED]
    assert len(credits_for(world, sale)) == 1
    assert Rma.objects.get().status == "credited"


def test_brightpearl_down_fails_the_run_as_transient_so_the_task_retries(world):
    approved_return(world)
    world.bp.control.add_fault(
        r"^/order-service/order-search", "error", method="GET", status=500, times=20
    )
    result = world.sync_result()
    run = result.run
    assert run.status == SyncRun.Status.FAILED
    assert "Brightpearl was unavailable during credits" in run.message
    assert result.transient is True
    world.bp.control.clear_faults()
    assert world.sync().status == SyncRun.Status.SUCCEEDED
    assert len(world.credits()) == 1


def test_a_credit_another_integration_made_for_the_rma_is_adopted(world):
    sale, loop_return = approved_return(world)
    # e.g. Brightpearl's Shopify app already credited this return, with the same reference.
    other = world.bp.post(
        "/order-service/sales-credit/",
        {
            "customer": {"id": world.contact_id},
            "parentId": sale.order_id,
            "ref": f"RMA-{loop_return['id']}",
            "rows": [
                {
                    "productId": world.products[sale.skus[0]],
                    "name": "x",
                    "quantity": "2",
                    "taxCode": "T20",
                    "net": "20.00",
                    "tax": "4.00",
                }
            ],
        },
    ).json()["response"]
    world.sync()
    assert [c["id"] for c in credits_for(world, sale)] == [other]
    binding = SalesCredit.objects.get()
    assert binding.adopted and binding.credit_id == other
    assert binding.row_map  # rows matched by product and quantity


def test_delay_past_the_client_timeout_on_the_payment_post_pays_once(world, settings):
    binding = _processed_and_refunded(world)
    settings.BRIGHTPEARL_TIMEOUT = 0.5
    settings.CREDIT_ATTEMPT_LEASE_SECONDS = 2
    world.bp.control.add_fault(PAYMENT_POST, "delay", method="POST", seconds=1.5, times=1)
    world.sync()
    world.sync()  # the first POST is still executing: nothing is sent
    time.sleep(2.2)  # the payment is written after we gave up waiting for the answer
    world.sync()
    world.sync()
    payments = [p for p in world.payments() if p["orderId"] == binding.credit_id]
    assert len(payments) == 1
    posts = [
        r
        for r in world.bp.control.requests()
        if r["method"] == "POST" and r["path"].rstrip("/").endswith("/customer-payment")
    ]
    assert len(posts) == 1
