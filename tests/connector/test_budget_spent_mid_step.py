"""Issue #12: a sync task never sleeps for budget — the account's request budget running out
(`BudgetSpent`, raised before a request is sent) may stop a run between any two requests.
Whatever it interrupts is left as if it had not started: no write lease on something never
sent, nothing recorded as refused on a guess, and the next run, once the budget is back,
finishes it exactly once and to the cent.

A real budget: a tiny per-account BRIGHTPEARL_REQUESTS_PER_MINUTE on the Redis throttle store
every worker shares, against the Brightpearl sandbox. The budget runs out after N requests,
for every N a step makes, then the window passes (the store forgets the account's slots) and
the next run has the full budget. (A budget of 1 stops a run before its second request: the
first one — a search — claims nothing.)
"""

import time
from decimal import Decimal

import pytest

from brightpearl import RedisThrottleStore
from connector.models import BindingState, RefundPayment, SalesCredit, SyncRun
from connector.services import exactly_once
from connector.services.brightpearl import client_for, never_sleep_for_budget
from connector.services.credit_plan import order_rows

pytestmark = pytest.mark.django_db

CREDIT_POST = r"^/order-service/sales-credit/?$"
# One order row of 3 units for 10.00 net / 2.00 tax, two returns of one unit each: the
# credits' shares are 3.33 / 0.67 and 3.34 / 0.66 (cumulative rounding: 6.67 / 1.33).
ROW = ("3", "10.00", "2.00")


def throttle_key(world) -> str:
    return client_for(world.connection).throttle.key


def sync_with_budget(world, settings, redis_url, requests: int | None) -> SyncRun:
    """A sync task's run (never sleeping for budget) in a fresh window of `requests` requests
    (None: Brightpearl's 200)."""
    RedisThrottleStore(redis_url).reset(throttle_key(world))
    settings.BRIGHTPEARL_REQUESTS_PER_MINUTE = 200 if requests is None else requests
    # The whole budget is the run's: no slots kept for the interactive lane (issue #11), so
    # `requests` is exactly how many the run may send.
    settings.BRIGHTPEARL_RESERVED_FOR_INBOUND = 0
    with never_sleep_for_budget(2):
        return world.sync()


def two_returns_of_one_order(world):
    sku = f"KETTLE-{world.bp.code}"
    units, net, tax = ROW
    sale = world.sale([(sku, int(units), net, tax)])
    for _ in range(2):
        world.loop_return(sale, [{"sku": sku, "quantity": 1}])
    return sale


def assert_credited_once_to_the_cent(world, sale):
    credits = sorted(
        (c for c in world.credits() if c["parentOrderId"] == sale.order_id), key=lambda c: c["id"]
    )
    assert len(credits) == 2, credits  # one per return, never two
    bindings = {b.credit_id: b for b in SalesCredit.objects.filter(state=BindingState.CREATED)}
    assert sorted(bindings) == [c["id"] for c in credits]
    shares = []
    for credit in credits:
        (order,) = world.bp.get(f"/order-service/order/{credit['id']}").json()["response"]
        (row,) = order_rows(order)
        net, tax = row.net, row.tax
        shares.append((net, tax))
        # What the binding says this credit took from the order row is what Brightpearl holds:
        # the next credit of that row is planned from it.
        (money,) = bindings[credit["id"]].order_row_money.values()
        assert (Decimal(money[0]), Decimal(money[1])) == (net, tax)
        assert bindings[credit["id"]].row_map  # rows read back: receipts can be mapped
    assert sorted(shares) == [
        (Decimal("3.33"), Decimal("0.67")),
        (Decimal("3.34"), Decimal("0.66")),
    ]


def assert_nothing_half_done():
    """After a pause: no write lease on anything, nothing refused or blocked."""
    for model in (SalesCredit, RefundPayment):
        assert not model.objects.filter(attempt_started_at__isnull=False).exists()
        assert not model.objects.filter(
            state__in=[BindingState.FAILED, BindingState.BLOCKED]
        ).exists()


# Requests of the credit step: order search, order GET, credits already on it, a POST per
# return, the rows read back; then the receipt step's reads.
@pytest.mark.parametrize("budget", range(1, 9))
def test_a_budget_spent_anywhere_in_the_credit_step_is_finished_by_the_next_run(
    world, settings, redis_url, budget
):
    sale = two_returns_of_one_order(world)
    paused = sync_with_budget(world, settings, redis_url, budget)
    if paused.status == SyncRun.Status.PARTIAL:
        assert "budget" in paused.message
    assert_nothing_half_done()

    done = sync_with_budget(world, settings, redis_url, None)
    assert done.status == SyncRun.Status.SUCCEEDED, done.message
    assert_credited_once_to_the_cent(world, sale)


@pytest.mark.parametrize("budget", [4, 6])
def test_a_budget_spent_between_a_lost_credit_answer_and_its_search(
    world, settings, redis_url, budget
):
    """The POST reached Brightpearl but its answer was lost; the budget ends before the search
    that would find it. The attempt keeps its write lease (it may still be executing), nothing
    is posted again, and once the lease ends the credit is adopted with what it was sent with."""
    settings.CREDIT_ATTEMPT_LEASE_SECONDS = 1
    sale = two_returns_of_one_order(world)
    world.bp.control.add_fault(CREDIT_POST, "drop", method="POST", times=2)
    paused = sync_with_budget(world, settings, redis_url, budget)
    assert paused.status == SyncRun.Status.PARTIAL
    in_doubt = SalesCredit.objects.filter(state=BindingState.ATTEMPTING)
    assert in_doubt.exclude(attempt_started_at=None).exists()
    time.sleep(1.1)  # the write lease ends
    sync_with_budget(world, settings, redis_url, None)
    sync_with_budget(world, settings, redis_url, None)
    assert_credited_once_to_the_cent(world, sale)


def refunded_on_loop(world, settings, redis_url, sale):
    sync_with_budget(world, settings, redis_url, None)
    for binding in SalesCredit.objects.all():
        world.bp.control.receive(binding.credit_id)
    sync_with_budget(world, settings, redis_url, None)
    settings.BRIGHTPEARL_REQUESTS_PER_MINUTE = 200


def refunds_to_record(world, settings, redis_url):
    """Two returns of one order credited, processed and refunded on Loop; their refunds are
    recorded by the next run."""
    sale = two_returns_of_one_order(world)
    world.connection.record_refunds = False
    world.connection.save(update_fields=["record_refunds"])
    refunded_on_loop(world, settings, redis_url, sale)
    world.connection.record_refunds = True
    world.connection.save(update_fields=["record_refunds"])
    return sale


# Requests of the refund step: the credits' totals, the bank's currency and payment method
# (cached afterwards), then per refund a payment POST and a note about the bonus; the close.
@pytest.mark.parametrize("budget", range(1, 14))
def test_a_budget_spent_anywhere_in_the_refund_list_pays_each_refund_once(
    world, settings, redis_url, budget
):
    sale = refunds_to_record(world, settings, redis_url)
    sync_with_budget(world, settings, redis_url, budget)
    assert_nothing_half_done()
    done = sync_with_budget(world, settings, redis_url, None)
    assert done.status == SyncRun.Status.SUCCEEDED, done.message

    credit_ids = set(SalesCredit.objects.values_list("credit_id", flat=True))
    payments = [p for p in world.payments() if p["orderId"] in credit_ids]
    assert sorted(p["orderId"] for p in payments) == sorted(credit_ids)  # one each
    recorded = RefundPayment.objects.all()
    assert [p.state for p in recorded] == [BindingState.CREATED] * 2
    assert sorted(p.payment_id for p in recorded) == sorted(p["paymentId"] for p in payments)
    assert_credited_once_to_the_cent(world, sale)


def test_a_credit_found_after_a_pause_keeps_the_amounts_it_was_sent_with(
    world, settings, redis_url
):
    """First return: its POST gets a gateway's 502 (it may still be executing: a lease). The
    second, planned while the first counts, takes the row's second share (3.34) — its POST
    lands, the answer is lost, and the budget ends before the search that would find it. Then
    the first is refused (a 400) and counts no more. The second's next attempt must adopt its
    credit with the 3.34 it holds, not re-plan first (alone: 3.33): the third return of the row
    is planned from what the second recorded, and the row must add up to 10.00 / 2.00."""
    settings.CREDIT_ATTEMPT_LEASE_SECONDS = 1
    sku = f"KETTLE-{world.bp.code}"
    sale = world.sale([(sku, 3, "10.00", "2.00")])
    for _ in range(2):
        world.loop_return(sale, [{"sku": sku, "quantity": 1}])
    world.bp.control.add_fault(CREDIT_POST, "error", method="POST", status=502, times=1)
    world.bp.control.add_fault(CREDIT_POST, "drop", method="POST", times=1)
    world.bp.control.add_fault(CREDIT_POST, "error", method="POST", status=400, times=1)
    # Order search, order GET, credits on it; first POST and its two searches; second POST.
    sync_with_budget(world, settings, redis_url, 7)
    first, second = SalesCredit.objects.order_by("pk")
    assert [c["externalRef"] for c in world.credits()] == [second.external_ref]
    assert second.state == BindingState.ATTEMPTING and second.attempt_started_at is not None
    assert second.order_row_money == {str(sale.row_ids[0]): ["3.34", "0.66"]}

    time.sleep(1.1)  # both leases end
    sync_with_budget(world, settings, redis_url, None)  # the first is refused, the second found
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == BindingState.FAILED
    assert second.state == BindingState.CREATED
    assert second.order_row_money == {str(sale.row_ids[0]): ["3.34", "0.66"]}

    # Staff retry the first; a third return of the row arrives.
    exactly_once.retry_requested(first)
    world.loop_return(sale, [{"sku": sku, "quantity": 1}])
    sync_with_budget(world, settings, redis_url, None)
    credits = [c for c in world.credits() if c["parentOrderId"] == sale.order_id]
    assert len(credits) == 3
    rows = [
        order_rows(world.bp.get(f"/order-service/order/{c['id']}").json()["response"][0])[0]
        for c in credits
    ]
    assert sum(r.net for r in rows) == Decimal("10.00")
    assert sum(r.tax for r in rows) == Decimal("2.00")


# --- a sync's turn on the inbound queue ending (issue #12) ---------------------------------------
# A sync on the inbound queue starts no new unit of work after its turn
# (INBOUND_SYNC_TURN_SECONDS): `brightpearl.TurnOver`, a BudgetSpent raised before a request.
# Here the turn ends right after the run's N-th request, for every N the steps make. Unlike a
# spent budget, a unit of work already begun (a claimed write, the search after its lost answer,
# a payment's note) runs to its end: the turn leaves no write lease and no failure behind.


def sync_with_turn_ending_after(world, monkeypatch, requests: int) -> SyncRun:
    """A sync task's run on the inbound queue whose 30 s turn is over right after its N-th
    request (the turn's end moved to the past when that request's answer comes)."""
    from brightpearl import throttle
    from connector.services import context

    real = context.client_for

    def client_for(connection, **kwargs):
        client = real(connection, **kwargs)
        answers = []

        def count(response, *args, **kw):
            answers.append(response.status_code)
            if len(answers) == requests:
                throttle._turn.set((float("-inf"), 30.0))  # the turn is over

        client._transport.session.hooks["response"].append(count)
        return client

    monkeypatch.setattr(context, "client_for", client_for)
    try:
        with never_sleep_for_budget(2), throttle.one_turn(3600):
            return world.sync()
    finally:
        monkeypatch.setattr(context, "client_for", real)


def assert_handed_on_cleanly(run: SyncRun) -> None:
    if run.status == SyncRun.Status.PARTIAL:
        assert run.message.startswith("Handed on during "), run.message
    else:
        assert run.status == SyncRun.Status.SUCCEEDED, run.message
    assert not [k for k, v in run.counts.items() if k.endswith("_failed") and v], run.counts
    assert_nothing_half_done()
    # Every credit made has its rows read back, even when the turn ended mid-batch.
    assert all(b.row_map for b in SalesCredit.objects.filter(state=BindingState.CREATED))


@pytest.mark.parametrize("requests", range(1, 9))
def test_a_turn_ending_anywhere_in_the_credit_step_is_finished_by_the_next_run(
    world, monkeypatch, requests
):
    sale = two_returns_of_one_order(world)
    assert_handed_on_cleanly(sync_with_turn_ending_after(world, monkeypatch, requests))
    done = world.sync()
    assert done.status == SyncRun.Status.SUCCEEDED, done.message
    assert_credited_once_to_the_cent(world, sale)


def test_a_turn_ending_on_a_lost_credit_answer_still_searches_for_it(world, monkeypatch):
    """The first credit's POST lands but its answer is lost, and the turn is over with it. The
    search that belongs to that POST still goes out: the credit is adopted at once, with no
    write lease (a spent budget there would leave one, see above); the second return waits
    for the next run."""
    sale = two_returns_of_one_order(world)
    world.bp.control.add_fault(CREDIT_POST, "drop", method="POST", times=1)
    # Order search, order GET, credits on it, then the first POST: the turn ends with it.
    handed = sync_with_turn_ending_after(world, monkeypatch, 4)
    assert handed.message.startswith("Handed on during credits"), handed.message
    assert_handed_on_cleanly(handed)
    first, second = SalesCredit.objects.order_by("pk")
    assert first.state == BindingState.CREATED and first.credit_id
    assert second.state == BindingState.PENDING
    world.sync()
    assert_credited_once_to_the_cent(world, sale)


@pytest.mark.parametrize("requests", range(1, 14))
def test_a_turn_ending_anywhere_in_the_refund_list_pays_each_refund_once(
    world, settings, redis_url, monkeypatch, requests
):
    sale = refunds_to_record(world, settings, redis_url)
    assert_handed_on_cleanly(sync_with_turn_ending_after(world, monkeypatch, requests))
    done = world.sync()
    assert done.status == SyncRun.Status.SUCCEEDED, done.message
    credit_ids = set(SalesCredit.objects.values_list("credit_id", flat=True))
    payments = [p for p in world.payments() if p["orderId"] in credit_ids]
    assert sorted(p["orderId"] for p in payments) == sorted(credit_ids)  # one each
    assert_credited_once_to_the_cent(world, sale)
