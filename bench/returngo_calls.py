"""ReturnGO calls per return over its whole life, and the returns a day that fit in ReturnGO's
default 2,000 calls a day per key.

Seeds N sales orders in the Brightpearl sandbox and N approved RMAs in the ReturnGO sandbox,
then runs the life of every return: credit → received in Brightpearl → Done on ReturnGO →
ReturnGO refunds (a transaction) → payment, followed by quiet polls. Two ways in:

* poll (default): every scheduled run lists the changes (`GET /rmas`), as at a 15-minute
  interval without webhooks;
* --webhooks: each RMA arrives as ReturnGO's `RMA_CREATED` webhook (POSTed to the connector's
  webhook view, processed by the inbound pipeline: one `GET /rma/{id}`), the scheduled runs
  within the hour defer the list poll (connector/services/poll_cadence.py), and "an hour
  later" the safety-net poll brings the refunds.

Prints ReturnGO calls by endpoint and per return; then, for a day at the cadence the mode runs
(96 polls at 15 minutes, 24 while webhooks arrive), the calls per return including the day's
poll share and the returns a day within 2,000 calls — the floor (one detail read and Done, plus
shipment Received unless --done-only; the same poll share) in the same line, printed last.
Loopback only; bounded by N.

    python bench/returngo_calls.py [N] [QUIET_POLLS] [--webhooks] [--done-only]
        (default 50 3; SQLite in a temp dir unless DATABASE_URL is set)
"""

import argparse
import math
import re
import time
from collections import Counter
from datetime import timedelta

from common import brightpearl_with_orders, in_process_django

in_process_django()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from connector.models import Connection, SalesCredit, SyncRun, WebhookEvent  # noqa: E402
from connector.services import inbound  # noqa: E402
from connector.services.poll_cadence import poll_interval  # noqa: E402
from connector.services.sync import run_sync  # noqa: E402
from returns.platforms.returngo.client import DAILY_CALL_LIMIT  # noqa: E402
from returns.platforms.returngo.sandbox import ReturnGOSandbox  # noqa: E402

PER_POLL = ("GET /rmas", "GET /transactions")


def returns_a_day(per_return: float, polls_a_day: int, limit: int = DAILY_CALL_LIMIT) -> int:
    """The most returns a day whose calls — `per_return` each, plus per poll one list call and
    one `GET /transactions` per 100 returns finished since the last poll — fit in `limit`."""
    best = 0
    for returns in range(1, limit + 1):
        per_poll = 1 + math.ceil(returns / polls_a_day / 100)
        if returns * per_return + polls_a_day * per_poll > limit:
            break
        best = returns
    return best


def make_connection(rg, mark_shipments: bool) -> Connection:
    Connection.objects.filter(name="rgo").delete()
    return Connection.objects.create(
        name="rgo",
        brightpearl_account="rgo",
        brightpearl_app_ref="rgo_app",
        brightpearl_account_token="t",
        platform="returngo",
        platform_api_key=rg.api_key,
        platform_shop_name=rg.shop_name,
        platform_api_url=rg.url,
        refund_method_code="1220",
        mark_shipments_received=mark_shipments,
    )


def deliver_created(connection: Connection, rg, numbers: list[str]) -> None:
    """ReturnGO's `RMA_CREATED` for each RMA, POSTed to the connector's webhook view (which
    stores it and queues its processing); each stored event is then processed here, one after
    the other, by the inbound pipeline a worker runs (`inbound.process`), waiting out any
    "due again" it answers (as the worker's countdown would)."""
    url = f"/webhooks/returngo/{connection.pk}/{connection.webhook_secret}/"
    client = Client()
    for number in numbers:
        body = rg.webhook_body(number, "RMA_CREATED")
        response = client.post(url, data=body, content_type="application/json")
        assert response.status_code == 202, response.content
        event_id = response.json()["received"]
        while (step := inbound.process(event_id)).retry_at is not None:
            print(f"  event {event_id} due again: {WebhookEvent.objects.get(pk=event_id).error}")
            time.sleep(max(0.0, (step.retry_at - timezone.now()).total_seconds()))


def main(n: int, quiet_polls: int, webhooks: bool, done_only: bool) -> None:
    call_command("migrate", verbosity=0)
    bp, control = brightpearl_with_orders("rgo", n, net="50", tax="10")
    rg = ReturnGOSandbox(port=0).start()
    numbers = [
        rg.add_rma(
            items=[{"sku": "SKU-A", "price": "50.00", "tax": "10.00"}],
            order_name=f"#{i}",
            order_id=f"shop-{i}",
            currency="GBP",
            status="Approved",
            fire=False,
        )["rmaSummary"]["rmaId"]
        for i in range(n)
    ]
    connection = make_connection(rg, mark_shipments=not done_only)
    interval = poll_interval("returngo") or timedelta(minutes=connection.sync_interval_minutes)

    def scheduled(hour_later: bool = False) -> SyncRun:
        if webhooks and hour_later:  # the safety-net poll is due again
            Connection.objects.filter(pk=connection.pk).update(
                platform_polled_at=timezone.now() - interval - timedelta(minutes=1)
            )
        connection.refresh_from_db()
        return run_sync(connection, trigger=SyncRun.Trigger.BEAT).run

    if webhooks:  # a connection that has been running: polled ten minutes ago
        earlier = timezone.now() - timedelta(minutes=10)
        Connection.objects.filter(pk=connection.pk).update(
            platform_polled_at=earlier, platform_watermark=earlier
        )
        deliver_created(connection, rg, numbers)  # credits
    else:
        scheduled()  # credits
    for binding in SalesCredit.objects.filter(connection=connection):
        control.receive(binding.credit_id)
    deferred = scheduled().counts.get("poll_deferred", 0)  # received → Done on ReturnGO
    for number in numbers:
        rg.add_transaction(number, "60.00")
    scheduled(hour_later=True)  # refunds → payments
    for _ in range(quiet_polls):
        scheduled(hour_later=True)
    payments = len(control.state().get("customerPayments", []))
    rg.stop()
    bp.stop()
    report(n, quiet_polls, webhooks, done_only, payments, deferred, rg.requests_seen, interval)


def report(n, quiet_polls, webhooks, done_only, payments, deferred, seen, interval) -> None:
    calls = Counter(f"{m} {re.sub(r'[0-9]+', '{id}', p)}" for m, p in seen)
    way = "RMA_CREATED webhooks + scheduled runs" if webhooks else "scheduled polls"
    shipment = "off" if done_only else "on"
    print(f"\nReturnGO calls for {n} returns over their life ({way}, {quiet_polls} quiet polls)")
    print(f"  'Move shipments to Received on the platform' {shipment}")
    for name, count in calls.most_common():
        print(f"  {count:5d}  {name}  ({count / n:.2f} per return)")
    print(f"payments recorded: {payments} of {n}")
    print(f"scheduled runs that deferred the list poll: {deferred}")
    own = (sum(calls.values()) - sum(calls[k] for k in PER_POLL)) / n
    print(f"calls per return besides the polls (measured): {own:.2f}")
    if webhooks:
        polls_a_day = int(timedelta(days=1) / interval)
        cadence = f"one list poll per {interval} while webhooks arrive"
    else:
        polls_a_day = 96
        cadence = "a list poll every 15 minutes"
    floor = 2 if done_only else 3
    best, best_floor = returns_a_day(own, polls_a_day), returns_a_day(floor, polls_a_day)
    share = polls_a_day * (1 + math.ceil(best / polls_a_day / 100)) / best
    print(
        f"a day at {cadence} ({polls_a_day} polls, a transactions call per poll per 100 "
        f"finished returns): {own + share:.3f} calls per return with the poll share"
    )
    print(
        f"returns a day within {DAILY_CALL_LIMIT:,} calls: {best} (floor {best_floor}: "
        f"{floor} calls per return — one detail read, Done"
        + ("" if done_only else ", shipment Received")
        + " — plus the same poll share)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=50)
    parser.add_argument("quiet_polls", nargs="?", type=int, default=3)
    parser.add_argument("--webhooks", action="store_true", help="RMAs arrive by RMA_CREATED")
    parser.add_argument("--done-only", action="store_true", help="mark_shipments_received off")
    args = parser.parse_args()
    main(args.n, args.quiet_polls, args.webhooks, args.done_only)
