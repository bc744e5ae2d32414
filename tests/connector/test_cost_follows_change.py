"""Issue #11: what a sync costs follows what changed, not history — counted as the sandboxes
recorded the requests over real HTTP (Brightpearl, Loop, ReturnGO), and as SQL queries."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from connector.intake_api.authentication import issue_intake_token
from connector.models import BindingState, SalesCredit, SyncEvent, SyncRun, WebhookEvent
from connector.services import chunks
from returns.models import Refund, Rma
from tests.connector.factories import ConnectionFactory
from tests.support.history import as_if_an_hour_passed, seed_history
from tests.support.world import approved_returngo_rma

pytestmark = pytest.mark.django_db


def brightpearl_calls(world) -> Counter:
    """(method, endpoint) → count, from the Brightpearl sandbox's request log."""
    calls: Counter = Counter()
    for r in world.bp.control.requests():
        path = r["path"].split(f"/{world.bp.code}/", 1)[-1].strip("/")
        calls[(r["method"], re.sub(r"/[\d,\-]+(?=/|$)", "/{ids}", path))] += 1
    return calls


def one_by_one_order_searches(world) -> list[dict]:
    return [
        r["query"]
        for r in world.bp.control.requests()
        if r["path"].endswith("/order-search")
        and ("externalRef" in r["query"] or "customerRef" in r["query"])
    ]


# --- 1. new returns: one POST each, the original orders read in batches -------------------
def test_original_orders_are_found_in_one_batched_search_and_one_batched_read(world):
    sku = "MUG-" + world.bp.code
    for _ in range(12):
        world.loop_return(world.sale([(sku, 2, "20.00", "4.00")]), [{"sku": sku}])
    # Known to Brightpearl only by the shop's order ID (its customer reference differs): the
    # batched search by order name cannot settle it; the one-by-one search does, as before.
    renamed = world.sale([(sku, 1, "10.00", "2.00")], reference="imported-by-hand")
    world.loop_return(renamed, [{"sku": sku}])
    # An order Brightpearl does not have: flagged, as before.
    world.loop.add_return(
        lines=[{"sku": sku}], order_name="#no-such", order_id="404", currency="GBP", fire=False
    )
    world.bp.control.clear_requests()

    run = world.sync()

    calls = brightpearl_calls(world)
    assert run.status == SyncRun.Status.PARTIAL or run.status == SyncRun.Status.SUCCEEDED
    assert calls[("POST", "order-service/sales-credit")] == 13
    assert calls[("GET", "order-service/sales-order-search")] == 1
    assert calls[("GET", "order-service/order/{ids}")] == 1
    # Only the two orders the batch did not settle were searched for on their own:
    # the renamed one (found by externalRef at once), the missing one (all three tries).
    searches = one_by_one_order_searches(world)
    assert len(searches) == 4
    assert {q.get("externalRef") for q in searches} >= {renamed.shop_order_id, "404"}
    assert SalesCredit.objects.filter(credit_id__isnull=False).count() == 13
    ghost = Rma.objects.get(order_name="#no-such")
    assert ghost.flagged and "was not found in Brightpearl" in ghost.flag_reason


# --- 2. a sync with nothing to do ----------------------------------------------------------
def test_a_quiet_sync_costs_the_same_whatever_the_history(world):
    sku = "BOWL-" + world.bp.code
    for _ in range(2):
        world.loop_return(world.sale([(sku, 1, "10.00", "2.00")]), [{"sku": sku}])
    world.sync()  # the two recent returns are credited; the platform still lists them
    figures, seeded = [], 0
    for size in (20, 400):
        seed_history(world.connection, size - seeded, seeded)
        seeded = size
        world.sync()
        as_if_an_hour_passed(world.connection)
        world.bp.control.clear_requests()
        with CaptureQueriesContext(db) as queries:
            run = world.sync()
        assert run.status == SyncRun.Status.SUCCEEDED
        writes = [q for q in queries if q["sql"].split(" ", 1)[0] in ("INSERT", "UPDATE")]
        figures.append((len(queries), sum(brightpearl_calls(world).values()), len(writes)))

    (queries_small, requests_small, _), (queries_large, requests_large, _) = figures
    assert queries_large == queries_small  # O(1): 20× the history, not one query more
    assert requests_small <= 1 and requests_large <= 1
    assert figures[0][2] == figures[1][2]  # the run's own bookkeeping, not per return


def test_a_refund_that_arrives_after_the_first_one_was_paid_is_paid_too(world):
    """The refund step no longer re-reads refunds already taken on (`bound`): a later refund on
    the same return, and a payment staff sent back to pending, must still be found."""
    sku = "CUP-" + world.bp.code
    ret = world.loop_return(world.sale([(sku, 2, "10.00", "2.00")]), [{"sku": sku}] * 2)
    world.loop.add_refund(ret["id"], "6.00")
    world.sync()
    first = Refund.objects.get(rma__external_id=str(ret["id"]))
    assert first.bound and first.payment.state == BindingState.CREATED

    world.loop.add_refund(ret["id"], "6.00")  # more of it, refunded a day later
    world.sync()

    refunds = Refund.objects.filter(rma__external_id=str(ret["id"])).order_by("pk")
    assert [r.payment.state for r in refunds] == [BindingState.CREATED] * 2
    assert all(r.bound for r in refunds)


# --- 3. ReturnGO: one read and two writes per return over its life ------------------------
@pytest.mark.parametrize("mark_shipments", [True, False], ids=["shipment-received", "done-only"])
def test_returngo_costs_three_calls_per_return_over_its_life(rg_world, mark_shipments):
    """Read once when it arrives (the listing is only a summary), shipment Received and Done
    once each; the refunds of every Done return come in one batched `GET /transactions`, and
    the list call is one per poll — neither grows with the returns. A merchant near ReturnGO's
    daily allowance can switch the shipment move off: two calls per return."""
    world, rg = rg_world, rg_world.returngo
    world.connection.mark_shipments_received = mark_shipments
    world.connection.save()
    sku = "SCARF-" + world.bp.code
    numbers = []
    for _ in range(4):
        numbers.append(approved_returngo_rma(world, sku))
    start = len(rg.requests_seen)
    world.sync()  # credits
    for credit in world.credits():
        world.bp.control.receive(credit["id"])
    world.sync()  # received → Done on ReturnGO
    for number in numbers:
        rg.add_transaction(number, "60.00")
    for _ in range(3):  # refunds, then quiet polls inside the list's overlap window
        world.sync()

    calls = Counter(
        (method, re.sub(r"\d+", "{id}", path)) for method, path in rg.requests_seen[start:]
    )
    assert len(world.payments()) == 4  # every refund was seen
    assert calls[("GET", "/rma/{id}")] == len(numbers)  # once each, when it arrived
    assert calls[("GET", "/transactions")] == 1  # the four refunds, in one call
    assert calls[("PUT", "/rma/{id}/status")] == len(numbers)
    assert calls[("PUT", "/shipment/{id}")] == (len(numbers) if mark_shipments else 0)
    assert calls[("GET", "/rmas")] == 5  # one per poll
    per_poll = calls[("GET", "/rmas")] + calls[("GET", "/transactions")]
    assert sum(calls.values()) - per_poll == (3 if mark_shipments else 2) * len(numbers)
    assert {rg.get_rma(n)["rmaSummary"]["status"] for n in numbers} == {"Done"}


# --- 4. Loop's rate limit is waited out --------------------------------------------------
def test_loop_429s_without_headers_are_waited_out_and_the_run_completes(world, settings):
    """Loop answers 429 with no Retry-After. Five in a row used to end the pull (four
    retries); now the client waits them out for up to three of Loop's windows (0.5 s here)."""
    settings.PLATFORM_RATE_LIMITS = {"loop": (300, 0.5)}
    sku = "PLATE-" + world.bp.code
    world.loop_return(world.sale([(sku, 1, "10.00", "2.00")]), [{"sku": sku}])
    refused_before = world.loop.rate_limited_seen
    world.loop.configure(throttle_next=5)

    run = world.sync()

    assert world.loop.rate_limited_seen - refused_before == 5
    assert run.status == SyncRun.Status.SUCCEEDED, run.message
    assert len(world.credits()) == 1


def test_loop_client_paces_itself_below_the_documented_limit(world, settings):
    settings.PLATFORM_RATE_LIMITS = {"loop": (2, 1.0)}
    world.loop.configure(rate_limit=[(2, 1.0)])
    sku = "JUG-" + world.bp.code
    world.loop_return(world.sale([(sku, 1, "10.00", "2.00")]), [{"sku": sku}])
    refused_before, seen_before = world.loop.rate_limited_seen, len(world.loop.requests_seen)

    run = world.sync()

    assert len(world.loop.requests_seen) - seen_before > 2  # more calls than one window allows
    assert world.loop.rate_limited_seen == refused_before  # none refused: it paced itself
    assert run.status == SyncRun.Status.SUCCEEDED, run.message


# --- 5. one commit per request ------------------------------------------------------------
def committed_writes(queries) -> int:
    """How many separately committed units wrote something: a write outside any transaction
    commits on its own; the writes of one outermost atomic block (a SAVEPOINT inside the test's
    transaction) commit together, and a block rolled back commits nothing."""
    units, levels = 0, []  # levels: per open savepoint, whether it wrote
    for query in queries:
        sql = query["sql"].lstrip().upper()
        if sql.startswith("SAVEPOINT"):
            levels.append(False)
        elif sql.startswith("ROLLBACK TO SAVEPOINT"):
            levels[-1] = False
        elif sql.startswith("RELEASE SAVEPOINT"):
            wrote = levels.pop()
            if levels:
                levels[-1] = levels[-1] or wrote
            else:
                units += wrote
        elif sql.startswith(("INSERT", "UPDATE", "DELETE")):
            if levels:
                levels[-1] = True
            else:
                units += 1
    return units


def test_a_webhook_delivery_is_one_insert(world, client):
    connection = world.connection
    body = json.dumps(
        {
            "accountCode": connection.brightpearl_account,
            "resourceType": "goods-in-note",
            "id": "1-5,99",
            "lifecycleEvent": "created",
            "fullEvent": "goods-in-note.created",
            "raisedOn": "2026-11-23T10:00:00.001Z",
        }
    )
    url = f"/webhooks/brightpearl/{connection.pk}/{connection.webhook_secret}/"

    with CaptureQueriesContext(db) as first:
        assert client.post(url, body, content_type="application/json").status_code == 202
    with CaptureQueriesContext(db) as again:  # the same event delivered twice
        assert client.post(url, body, content_type="application/json").status_code == 202

    writes = [q["sql"] for q in first if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))]
    assert len(writes) == 1 and writes[0].startswith('INSERT INTO "connector_webhookevent"')
    assert committed_writes(first) == 1
    stored = WebhookEvent.objects.order_by("pk")
    assert [e.status for e in stored] == ["received", "duplicate"]
    assert stored[0].event == "goods-in-note.created" and stored[0].resource_ids == "1-5,99"
    assert stored[1].duplicate_of_id == stored[0].pk and not stored[1].dedupe_key
    # The duplicate: its claim of the key fails (rolled back), it is stored once, and the first
    # delivery is asked to run again if it never finished.
    assert committed_writes(again) == 2


def test_an_intake_post_commits_once(django_capture_on_commit_callbacks):
    connection = ConnectionFactory(platform="generic", platform_api_key="")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_intake_token(connection)}")
    body = {
        "external_id": "R-1",
        "status": "approved",
        "order_id": "5550001",
        "order_name": "#1001",
        "currency": "GBP",
        "lines": [{"line_id": "a", "sku": "SHIRT-M", "quantity": 2, "unit_price": "20.00"}],
        "refunds": [{"external_id": "rf-1", "amount": "40.00", "currency": "GBP"}],
    }
    with CaptureQueriesContext(db) as queries, django_capture_on_commit_callbacks() as queued:
        response = api.post("/api/intake/rmas/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["lines"][0]["quantity"] == 2
    assert committed_writes(queries) == 1
    assert len(queued) == 1  # one sync asked for, after the commit


# --- 4. a run's memory follows its chunk, not the credits still open ----------------------
def salescredit_rows_per_query(queries: list) -> list[int]:
    """The number of rows each SELECT from the sales-credit table returned."""
    return [
        rows
        for sql, rows in queries
        if sql.lstrip().upper().startswith("SELECT")
        and sql.split(" FROM ", 1)[-1].startswith('"connector_salescredit"')
    ]


def test_the_open_credits_are_read_a_chunk_at_a_time_and_each_handled_once(
    world, monkeypatch, postgres
):
    """The receipt step, the changes after the credit and the duplicate check read the credits
    still open (or created since the last look) STEP_BATCH rows at a time — reading them all at
    once made a run's memory grow with every return it handled (bench/memory.py) — and still
    handle every credit once, in order, with one goods-in note read per chunk."""
    monkeypatch.setattr(chunks, "STEP_BATCH", 3)
    world.connection.cancelled_credit_status_id = 14  # the sandbox's "Credit cancelled"
    world.connection.save()
    sku = "JUG-" + world.bp.code
    returns = [
        world.loop_return(world.sale([(sku, 1, "10.00", "2.00")]), [{"sku": sku}]) for _ in range(8)
    ]
    world.sync()
    rmas = [Rma.objects.get(external_id=str(r["id"])) for r in returns]
    credit_ids = [rma.sales_credit.credit_id for rma in rmas]
    assert all(credit_ids) and credit_ids == sorted(credit_ids)
    received = rmas[1:]  # seven credits received in Brightpearl…
    for rma in received:
        world.bp.control.receive(rma.sales_credit.credit_id)
    world.loop.set_state(returns[0]["id"], "cancelled")  # …one return ended on the platform
    world.bp.control.clear_requests()

    queries: list[tuple[str, int]] = []

    def count_rows(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        queries.append((sql, context["cursor"].rowcount))
        return result

    with db.execute_wrapper(count_rows):
        run = world.sync()

    assert run.status == SyncRun.Status.SUCCEEDED, run.message
    read = salescredit_rows_per_query(queries)
    # Never every open credit at once (8 open, 8 created since the last look).
    assert max(read) <= 3, [(sql[:300], rows) for sql, rows in queries if rows > 3]
    assert sum(1 for rows in read if rows == 3) >= 3  # chunked, not skipped
    processed = SyncEvent.objects.filter(
        run=run, kind=SyncEvent.Kind.PROCESS, outcome=SyncEvent.Outcome.SUCCEEDED
    ).order_by("pk")
    assert [e.credit_id for e in processed] == credit_ids[1:]  # each once, in order
    assert all(world.loop.actions_for(r["id"]).count("process") == 1 for r in returns[1:])
    [ended] = SyncEvent.objects.filter(run=run, kind=SyncEvent.Kind.ENDED)
    assert ended.credit_id == credit_ids[0] and ended.outcome == SyncEvent.Outcome.SUCCEEDED
    # One goods-in note read per chunk of credits (200 in production), not one per credit.
    calls = brightpearl_calls(world)
    assert calls[("GET", "warehouse-service/order/{ids}/goods-note/goods-in")] == 3
