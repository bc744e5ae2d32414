"""A final ReturnGO RMA we hold is brought up to date from one batched `GET /transactions`, not
a `GET /rma/{id}` each — and read again whenever the batch cannot say everything (against the
ReturnGO sandbox over real HTTP)."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from returns.platforms.returngo.adapter import DETAIL_KEYS, settled_rma

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def holding(neutrals):
    """What the connector holds after taking these in (`connector.services.sync.held_copies`)."""
    by_id = {n.external_id: n for n in neutrals}

    def held(ids, keys=("rmaSummary",)):
        return {
            i: {
                "updated_at": by_id[i].updated_at,
                "raw": {k: by_id[i].raw.get(k) for k in keys},
            }
            for i in ids
            if i in by_id
        }

    return held


def calls_since(sandbox, start):
    return Counter(
        (method, "/rma/{id}" if path.startswith("/rma/") else path)
        for method, path in sandbox.requests_seen[start:]
    )


def approved(sandbox, returngo, count, **options):
    numbers = [
        sandbox.add_rma(items=[{"sku": f"SKU-{n}", "price": f"{10 + n}.00"}], **options)[
            "rmaSummary"
        ]["rmaId"]
        for n in range(count)
    ]
    return numbers, [returngo.fetch(n) for n in numbers]


def test_done_rmas_get_their_refunds_from_one_batched_transactions_call(returngo_sandbox, returngo):
    numbers, taken = approved(returngo_sandbox, returngo, 3)
    for position, number in enumerate(numbers):
        returngo_sandbox.set_status(number, "Done", fire=False)
        returngo_sandbox.add_transaction(number, f"{10 + position}.00")
    start = len(returngo_sandbox.requests_seen)

    rmas = {r.external_id: r for r in returngo.fetch_changed(HOUR_AGO, held=holding(taken))}

    assert calls_since(returngo_sandbox, start) == {
        ("GET", "/rmas"): 1,
        ("GET", "/transactions"): 1,
    }
    for position, number in enumerate(numbers):
        rma = rmas[number]
        assert rma.platform_status == "Done" and rma.refunds_complete
        assert [r.amount for r in rma.refunds] == [Decimal(f"{10 + position}.00")]
        assert [line.sku for line in rma.lines] == [f"SKU-{position}"]  # the copy we hold
        assert rma.raw["rmaSummary"]["events"][-1]["eventName"] == "TRANSACTION_CREATED"
        assert rma.updated_at >= taken[position].updated_at


def test_listed_transactions_name_no_rma_only_their_items(returngo_sandbox, returngo):
    (number,), _ = approved(returngo_sandbox, returngo, 1)
    returngo_sandbox.add_transaction(number, "5.00")
    (row,) = returngo.client.transactions([number])
    assert "rmaId" not in row and row["returnItemIds"]  # as ReturnGO documents the listing


def test_a_refund_that_names_no_item_sends_the_batch_to_the_details(returngo_sandbox, returngo):
    numbers, taken = approved(returngo_sandbox, returngo, 2)
    for number in numbers:
        returngo_sandbox.set_status(number, "Done", fire=False)
    returngo_sandbox.add_transaction(numbers[0], "7.00", return_item_ids=[])
    start = len(returngo_sandbox.requests_seen)

    rmas = {r.external_id: r for r in returngo.fetch_changed(HOUR_AGO, held=holding(taken))}

    calls = calls_since(returngo_sandbox, start)
    assert calls[("GET", "/transactions")] == 1 and calls[("GET", "/rma/{id}")] == 2
    assert [r.amount for r in rmas[numbers[0]].refunds] == [Decimal("7.00")]
    assert rmas[numbers[1]].refunds == []


def test_money_in_that_names_no_item_does_not_cost_a_read(returngo_sandbox, returngo):
    numbers, taken = approved(returngo_sandbox, returngo, 2)
    for number in numbers:
        returngo_sandbox.set_status(number, "Done", fire=False)
    returngo_sandbox.add_transaction(numbers[0], "3.00", type="InvoicePayment", return_item_ids=[])
    returngo_sandbox.add_transaction(numbers[1], "9.00")
    start = len(returngo_sandbox.requests_seen)

    rmas = {r.external_id: r for r in returngo.fetch_changed(HOUR_AGO, held=holding(taken))}

    assert calls_since(returngo_sandbox, start)[("GET", "/rma/{id}")] == 0
    assert rmas[numbers[0]].refunds == []  # an InvoicePayment is money in, never a refund
    assert [r.amount for r in rmas[numbers[1]].refunds] == [Decimal("9.00")]


def test_an_exchange_or_a_reopened_rma_is_read_again(returngo_sandbox, returngo):
    exchange = returngo_sandbox.add_rma(items=[{"sku": "X", "resolution": "ExchangeVariant"}])
    reopened = returngo_sandbox.add_rma(items=[{"sku": "Y"}], status="Done")
    taken = [returngo.fetch(r["rmaSummary"]["rmaId"]) for r in (exchange, reopened)]
    returngo_sandbox.set_status(exchange["rmaSummary"]["rmaId"], "Done", fire=False)
    returngo_sandbox.set_status(reopened["rmaSummary"]["rmaId"], "Pending", fire=False)
    start = len(returngo_sandbox.requests_seen)

    rmas = list(returngo.fetch_changed(HOUR_AGO, held=holding(taken)))

    assert calls_since(returngo_sandbox, start) == {("GET", "/rmas"): 1, ("GET", "/rma/{id}"): 2}
    assert {r.platform_status for r in rmas} == {"Done", "Pending"}


def test_the_whole_copy_is_asked_for_only_for_final_rmas(returngo_sandbox, returngo):
    numbers, taken = approved(returngo_sandbox, returngo, 2)
    returngo_sandbox.set_status(numbers[0], "Done", fire=False)
    returngo_sandbox.set_status(numbers[1], "Received", fire=False)
    asked = []
    held = holding(taken)

    def spying(ids, keys=("rmaSummary",)):
        asked.append((sorted(ids), keys))
        return held(ids, keys)

    list(returngo.fetch_changed(HOUR_AGO, held=spying))
    assert asked == [(sorted(numbers), ("rmaSummary",)), ([numbers[0]], DETAIL_KEYS)]


def test_a_settled_rma_is_never_dated_before_the_window_it_was_listed_in(returngo_sandbox):
    """The listing has no `lastUpdated`: an RMA whose copy is old and whose summary shows no
    dated event is dated at the window's start (it was listed by `rma_updated_at=gte:`), so
    the watermark does not go back to the copy's day."""
    old = datetime(2026, 1, 2, tzinfo=UTC)
    number = returngo_sandbox.add_rma(status="Done", created_at=old, fire=False)["rmaSummary"][
        "rmaId"
    ]
    copy = returngo_sandbox.get_rma(number)
    summary = {"rmaId": number, "status": "Canceled", "order_name": "#1001", "events": []}
    rma = settled_rma(summary, copy, [], "presentment", HOUR_AGO)
    assert rma.updated_at == HOUR_AGO and rma.platform_status == "Canceled"
    assert rma.raw["lastUpdated"] == copy["lastUpdated"]  # ReturnGO's, untouched
