"""Loop adapter against the Loop sandbox over real HTTP."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from returns.intake import upsert_rma
from returns.platforms import get_platform
from returns.platforms.errors import (
    AuthError,
    NotFound,
    RateLimited,
    Refused,
    ValidationError,
)
from returns.platforms.loop.adapter import fit_note, signature, to_neutral
from returns.platforms.loop.client import read_action_reply, split_windows

NOW = datetime.now(UTC)


def test_poll_pages_and_aggregates_units(loop_sandbox):
    for n in range(7):
        loop_sandbox.add_return(
            order_name=f"#{1100 + n}",
            lines=[
                {"sku": "TEE", "quantity": 3, "price": "20.00", "tax": "1.60"},
                {"sku": "CAP", "price": "15.00"},
            ],
        )
    loop = get_platform(
        "loop", api_key=loop_sandbox.api_key, base_url=loop_sandbox.api_url, page_size=3
    )
    feed = loop.fetch_changed(NOW - timedelta(days=1))
    neutral = list(feed)
    assert feed.count == 7 and feed.max_updated_at is not None
    assert feed.max_updated_at == max(r.updated_at for r in neutral)
    # default state group paged in 3 calls (3+3+1), then cancelled and review: 1 call each
    list_calls = [p for m, p in loop_sandbox.requests_seen if p.endswith("/return/list")]
    assert len(list_calls) == 5
    first = neutral[0]
    assert len(first.lines) == 4  # one per unit
    assert first.lines[0].unit_price == Decimal("20.00")
    assert first.lines[0].tax == Decimal("1.60")


def test_poll_pages_through_next_page_url(loop_sandbox, loop):
    for _ in range(5):
        loop_sandbox.add_return()
    rows = list(loop.client.list_returns(NOW - timedelta(hours=1), datetime.now(UTC), page_size=2))
    assert len({r["id"] for r in rows}) == 5
    cursors = [p for m, p in loop_sandbox.requests_seen if p.endswith("/return/list")]
    assert len(cursors) == 3


def test_poll_over_more_than_120_days_is_split_into_windows(loop_sandbox, loop):
    old = datetime.now(UTC) - timedelta(days=200)
    loop_sandbox.add_return(created_at=old, order_name="#OLD")
    loop_sandbox.add_return(order_name="#NEW")
    feed = loop.fetch_changed(datetime.now(UTC) - timedelta(days=300))
    names = sorted(r.order_name for r in feed)
    assert names == ["#NEW", "#OLD"]
    windows = split_windows(datetime.now(UTC) - timedelta(days=300), datetime.now(UTC))
    assert len(windows) == 3
    assert all(end - start <= timedelta(days=120) for start, end in windows)


def test_sandbox_refuses_a_window_longer_than_120_days(loop_sandbox, loop):
    with pytest.raises(ValidationError):
        list(loop.client.list_returns(datetime.now(UTC) - timedelta(days=121), datetime.now(UTC)))


def test_cancelled_and_review_returns_are_asked_for_explicitly(loop_sandbox, loop):
    for state in ("open", "closed", "expired", "cancelled", "review"):
        loop_sandbox.add_return(state=state, order_name=f"#{state}")
    states = sorted(r.platform_status for r in loop.fetch_changed(NOW - timedelta(hours=1)))
    assert states == ["cancelled", "closed", "expired", "open", "review"]


def test_polled_returns_upsert_aggregated(connection, loop_sandbox, loop):
    loop_sandbox.add_return(lines=[{"sku": "TEE", "quantity": 3, "price": "20.00"}])
    (neutral,) = list(loop.fetch_changed(NOW - timedelta(hours=1)))
    rma, created = upsert_rma(connection, neutral)
    line = rma.lines.get()
    assert (line.sku, line.quantity, len(line.platform_line_ids)) == ("TEE", 3, 3)
    assert rma.currency == "USD" and rma.order_name == "#1001"
    assert not rma.flagged


def test_fetch_and_not_found(loop_sandbox, loop):
    record = loop_sandbox.add_return(destination_id="101")
    neutral = loop.fetch(str(record["id"]))
    assert neutral.external_id == str(record["id"])
    assert neutral.destination_id == "101"
    with pytest.raises(NotFound):
        loop.fetch("999999")


def test_wrong_key_is_an_auth_error(loop_sandbox):
    adapter = get_platform("loop", api_key="wrong", base_url=loop_sandbox.api_url)
    with pytest.raises(AuthError) as info:
        adapter.fetch("1")
    assert info.value.status == 401


def test_process_is_idempotent(loop_sandbox, loop):
    rid = loop_sandbox.add_return()["id"]
    loop.process(rid)
    assert loop_sandbox.get_return(rid)["state"] == "closed"
    loop.process(rid)  # UNPROCESSABLE_RETURN for a closed return = success
    assert loop_sandbox.actions_for(rid) == ["process"]


def test_process_of_a_cancelled_or_flagged_return_is_refused_in_loops_words(loop_sandbox, loop):
    """Loop answers these with HTTP 200 and `{"message": …}` (no `errors`): still a refusal."""
    cancelled = loop_sandbox.add_return(state="cancelled")["id"]
    with pytest.raises(Refused) as info:
        loop.process(cancelled)
    assert info.value.message == "Return is cancelled and therefore cannot be processed."
    assert info.value.status == 200
    flagged = loop_sandbox.add_return(state="review")["id"]
    with pytest.raises(Refused) as info:
        loop.process(flagged)
    assert "review" in info.value.message
    expired = loop_sandbox.add_return(state="expired")["id"]
    with pytest.raises(Refused) as info:
        loop.process(expired)
    assert info.value.code == "UNPROCESSABLE_RETURN"
    assert loop_sandbox.actions_for(cancelled) == loop_sandbox.actions_for(flagged) == []


def test_close_and_cancel_refusals_in_every_documented_shape(loop_sandbox, loop):
    cancelled = loop_sandbox.add_return(state="cancelled")["id"]
    with pytest.raises(Refused, match="Return is cancelled and therefore cannot be processed."):
        loop.close(cancelled)
    expired = loop_sandbox.add_return(state="expired")["id"]
    with pytest.raises(Refused, match="Return is expired and cannot be processed."):
        loop.client.cancel(expired)
    flagged = loop_sandbox.add_return(state="review")["id"]
    with pytest.raises(Refused, match="Return is flagged and cannot be processed."):
        loop.client.cancel(flagged)
    closed = loop_sandbox.add_return(state="closed")["id"]
    with pytest.raises(Refused) as info:
        loop.client.flag(closed)
    assert info.value.code == "UNPROCESSABLE_RETURN"
    assert loop_sandbox.get_return(expired)["state"] == "expired"
    assert loop_sandbox.get_return(flagged)["state"] == "review"


@pytest.mark.parametrize(
    "body",
    [
        {"message": "Return is cancelled and therefore cannot be processed."},
        {"content": "Return is flagged and cannot be processed."},
        {"errors": {"message": "Return is open and therefore cannot be processed."}},
        {"error": {"message": "The line item id field is required."}},
        {"errors": ["something"]},
        "false",
        False,
        None,
        {"unexpected": 1},
    ],
)
def test_only_the_documented_success_is_success(body):
    with pytest.raises(Refused):
        read_action_reply(body, "/warehouse/return/1/process")


@pytest.mark.parametrize("body", ["true", True, '"true"'])
def test_documented_success(body):
    read_action_reply(body, "/warehouse/return/1/process")


def test_refusal_with_a_non_200_status_is_still_an_error(loop_sandbox, loop):
    loop_sandbox.configure(action_error_status=422)
    rid = loop_sandbox.add_return(state="cancelled")["id"]
    with pytest.raises(ValidationError):
        loop.process(rid)
    closed = loop_sandbox.add_return(state="closed")["id"]
    loop.process(closed)  # already closed: success for our retries


def test_a_429_without_headers_is_waited_out(loop_sandbox, loop):
    loop_sandbox.configure(throttle_next=2)
    rid = loop_sandbox.add_return()["id"]
    loop.process(rid)
    assert loop_sandbox.get_return(rid)["state"] == "closed"
    statuses = [p for m, p in loop_sandbox.requests_seen if p.endswith("/process")]
    assert len(statuses) == 3  # two bare 429s, then the call that went through


def test_an_answer_after_the_client_timeout_is_not_success_and_the_retry_is(loop_sandbox):
    from returns.platforms.errors import TransportError

    loop_sandbox.configure(slow_actions={"process": 1.5})
    slow = get_platform(
        "loop", api_key=loop_sandbox.api_key, base_url=loop_sandbox.api_url, timeout=(2, 0.5)
    )
    rid = loop_sandbox.add_return()["id"]
    with pytest.raises(TransportError):
        slow.process(rid)  # Loop did it, but we cannot know: not counted as done
    loop_sandbox.configure(slow_actions={})
    slow.process(rid)  # the retry reads "closed" and counts it done, without a second process
    assert loop_sandbox.actions_for(rid) == ["process"]


def test_flag_sends_no_body_and_writes_the_reason_as_a_short_note(loop_sandbox, loop):
    rid = loop_sandbox.add_return()["id"]
    loop.flag(rid, "Expected 3 × TEE, received 2. " + "x" * 400)
    assert loop_sandbox.get_return(rid)["state"] == "review"
    (note,) = loop_sandbox.notes_for(rid)
    assert note["content"].startswith("Flagged by Brightpearl connector: Expected 3")
    assert len(note["content"]) < 255
    assert loop_sandbox.actions_for(rid) == ["flag", "note"]
    flag_action = [a for a in loop_sandbox.actions if a["action"] == "flag"][0]
    assert flag_action["body"] is None
    loop.flag(rid, "again")  # already in review: still fine, another note
    assert len(loop_sandbox.notes_for(rid)) == 2


def test_note_close_and_notes_read(loop_sandbox, loop):
    rid = loop_sandbox.add_return()["id"]
    assert loop.client.notes(rid) == []
    loop.add_note(rid, "Parcel arrived damp")
    assert [n["content"] for n in loop.client.notes(rid)] == ["Parcel arrived damp"]
    loop.close(rid)
    loop.close(rid)  # already closed: success
    assert loop_sandbox.get_return(rid)["state"] == "closed"
    assert loop_sandbox.actions_for(rid) == ["note", "close"]


def test_fit_note():
    assert fit_note("a  b\nc") == "a b c"
    assert len(fit_note("x" * 1000)) == 254


def test_refunds_after_processing(loop_sandbox, loop):
    rid = loop_sandbox.add_return(lines=[{"sku": "A", "quantity": 2, "price": "10.00"}])["id"]
    assert loop.refunds(rid) == []
    loop.process(rid)
    (refund,) = loop.refunds(rid)
    assert refund.amount == Decimal("20.00") and refund.currency == "USD"
    assert refund.external_id


def test_destinations(loop_sandbox, loop):
    loop_sandbox.add_destination("Main warehouse", id=101)
    (destination,) = loop.list_destinations()
    assert (destination.id, destination.name, destination.kind) == (
        "101",
        "Main warehouse",
        "warehouse",
    )


def test_mark_received_has_no_loop_lever(loop_sandbox, loop):
    rid = loop_sandbox.add_return()["id"]
    assert loop.mark_received(rid, []) is False
    assert loop_sandbox.actions_for(rid) == []


def test_rate_limit_429_is_waited_out(loop_sandbox, loop):
    loop_sandbox.add_return()
    loop_sandbox.configure(rate_limit=[(3, 1.0)])
    slept = []
    original = loop.client.sleep
    loop.client.sleep = lambda s: (slept.append(s), original(s))
    for _ in range(6):
        loop.list_destinations()
    assert slept, "the client should have backed off at least once"
    assert loop.client.calls > 6  # retries were sent


def test_rate_limit_gives_up_with_a_typed_error(loop_sandbox):
    loop_sandbox.configure(rate_limit=[(1, 30.0)])
    adapter = get_platform(
        "loop",
        api_key=loop_sandbox.api_key,
        base_url=loop_sandbox.api_url,
        max_retries=1,
        backoff=0.01,
    )
    adapter.list_destinations()
    with pytest.raises(RateLimited):
        adapter.list_destinations()


# -- webhooks --------------------------------------------------------------------------------


def test_signed_webhook_reaches_receiver_and_verifies(loop_sandbox, loop, webhook_receiver):
    rid = loop_sandbox.add_return()["id"]
    loop_sandbox.configure(webhook_url=webhook_receiver.url + "/hooks/loop")
    record = loop_sandbox.fire_webhook(rid, "return.updated")
    assert record["status"] == 200
    (delivery,) = webhook_receiver.received
    assert loop.verify_webhook(delivery["headers"], delivery["body"])
    event, external_id, key = loop.parse_webhook(delivery["body"])
    assert (event, external_id) == ("return.updated", str(rid))
    assert key.startswith(f"loop:{rid}:return.updated:")


def test_writes_fire_webhooks_automatically(loop_sandbox, loop, webhook_receiver):
    loop_sandbox.configure(webhook_url=webhook_receiver.url)
    rid = loop_sandbox.add_return()["id"]
    loop.process(rid)
    loop_sandbox.wait_for_deliveries()
    triggers = sorted(json.loads(d["body"])["trigger"] for d in webhook_receiver.received)
    assert triggers == ["return.closed", "return.created"]
    assert all(loop.verify_webhook(d["headers"], d["body"]) for d in webhook_receiver.received)


@pytest.mark.parametrize("case", ["valid", "tampered", "wrong secret", "missing", "no secret"])
def test_signature_cases(loop_sandbox, loop, case):
    rid = loop_sandbox.add_return()["id"]
    body = loop_sandbox.webhook_body(rid, "return.updated")
    headers = {"X-Loop-Signature": loop_sandbox.sign(body)}
    adapter = loop
    if case == "tampered":
        body = body.replace(b'"open"', b'"closed"')
    elif case == "wrong secret":
        headers = {"X-Loop-Signature": signature("not-the-secret", body)}
    elif case == "missing":
        headers = {}
    elif case == "no secret":
        adapter = get_platform("loop", api_key="k", base_url=loop_sandbox.api_url)
    assert adapter.verify_webhook(headers, body) is (case == "valid")


def test_header_lookup_is_case_insensitive(loop_sandbox, loop):
    body = b'{"id":1}'
    assert loop.verify_webhook({"x-loop-signature": loop_sandbox.sign(body)}, body)


def test_duplicate_and_out_of_order_webhooks(loop_sandbox, loop):
    rid = loop_sandbox.add_return()["id"]
    first = loop_sandbox.webhook_body(rid, "return.updated")
    loop_sandbox.set_state(rid, "review")
    second = loop_sandbox.webhook_body(rid, "return.updated")
    # a retry repeats the body: same key; a later change: a different key
    assert loop.parse_webhook(first).dedupe_key == loop.parse_webhook(first).dedupe_key
    assert loop.parse_webhook(first).dedupe_key != loop.parse_webhook(second).dedupe_key
    # out of order: both name the same return, and acting on a re-fetch gives the latest state
    assert {loop.parse_webhook(b).external_id for b in (second, first)} == {str(rid)}
    assert loop.fetch(str(rid)).platform_status == "review"


def test_processing_failed_webhook_and_bad_bodies(loop_sandbox, loop):
    rid = loop_sandbox.add_return()["id"]
    event = loop.parse_webhook(loop_sandbox.webhook_body(rid, "return.processing.failed"))
    assert (event.event_name, event.external_id) == ("return.processing.failed", str(rid))
    assert event.dedupe_key.startswith(f"loop:{rid}:return.processing.failed:sha256:")
    from returns.platforms.errors import WebhookParseError

    for body in (b"not json", b"[]", b'{"topic":"return"}'):
        with pytest.raises(WebhookParseError):
            loop.parse_webhook(body)


def test_control_api_over_http(loop_sandbox):
    base = loop_sandbox.url + "/_sandbox"
    created = requests.post(
        f"{base}/returns",
        json={"order_name": "#HTTP", "lines": [{"sku": "Z", "quantity": 2}]},
        timeout=5,
    ).json()
    assert len(created["line_items"]) == 2
    rid = created["id"]
    requests.patch(f"{base}/returns/{rid}", json={"state": "review"}, timeout=5)
    assert requests.get(f"{base}/returns/{rid}", timeout=5).json()["state"] == "review"
    requests.post(f"{base}/returns/{rid}/refunds", json={"amount": "5"}, timeout=5)
    assert loop_sandbox.get_return(rid)["refunds"][0]["amount"] == "5.00"
    assert requests.post(f"{base}/config", json={"bogus": 1}, timeout=5).status_code == 400
    assert requests.get(f"{base}/actions", timeout=5).json() == {"actions": []}


def test_flagged_return_processes_when_the_merchant_allows_it(loop_sandbox, loop):
    loop_sandbox.configure(allow_flagged_process=True)
    rid = loop_sandbox.add_return(state="review")["id"]
    loop.process(rid)
    assert loop_sandbox.get_return(rid)["state"] == "closed"


def _loop_outcomes(**fields) -> list[tuple[str, str, str]]:
    data = {
        "id": 77,
        "state": "open",
        "currency": "GBP",
        "line_items": [
            {"line_item_id": 1, "sku": "A", "price": "10.00", "tax": "2.00", "outcome": "exchange"},
            {"line_item_id": 2, "sku": "B", "price": "8.00", "outcome": "store_credit"},
        ],
        **fields,
    }
    return [(r.outcome, str(r.amount), r.reference) for r in to_neutral(data).refunds]


def test_loop_store_credit_counts_only_once_issued_and_exchange_only_with_its_order():
    # A promised gift card on an open return is not yet given; no exchange order yet either.
    assert _loop_outcomes(gift_card="8.00") == []
    assert _loop_outcomes(gift_card="8.00", state="closed") == [("store_credit", "8.00", "")]
    assert _loop_outcomes(gift_card="8.80", gift_card_order_name="GC-77") == [
        ("store_credit", "8.80", "GC-77")
    ]
    assert _loop_outcomes(exchange_order_name="#EX77") == [("exchange", "12.00", "#EX77")]
