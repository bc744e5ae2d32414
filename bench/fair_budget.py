"""Fair budget (issue #11): webhooks while a large backlog drains at Brightpearl's real limit.

    python bench/fair_budget.py [--backlog 2000] [--duration 120] [--interval 4]
                                [--reserve 6] [--burst 100]

Starts, all on loopback: the Brightpearl and Loop sandboxes (threads in this process; the
Brightpearl sandbox enforces `--budget` requests per 60 s period per account, answering 503
past it), a connector web process (`manage.py runserver`) and a real Celery worker (prefork,
2 children) on Redis, with PostgreSQL as the database (a database of its own, recreated).

It credits `--webhooks` returns, registers the connector's Brightpearl webhooks, then puts a
backlog of `--backlog` new returns in Loop and queues one sync of the connection: the backlog
drains in the worker (bulk lane). Meanwhile, every `--interval` seconds, one of the credited
returns is received in the sandbox, which fires `goods-in-note.created` at the web process.

Measured, over `--duration` seconds of the backlog draining:
* webhook → RMA updated: start of the sandbox's POST → the RMA line shows the received
  quantity in the database (polled every 10 ms); p50 / p95 / max (target p95 < 5 s);
* budget used while work is pending: Brightpearl requests answered (not 503) from the
  backlog's first request for the duration / (budget × duration / 60 s) (target ≥ 95 %), with
  the backlog still pending at the end (else the run says so). Before its first request the
  sync lists and stores the new returns, which spends no Brightpearl budget; how long that took
  is printed;
* throttling failures: 503 answers from the sandbox, failed or partial sync runs, failed
  events (target 0).

`--reserve 0 --burst 100000` runs without lanes (every caller spends the whole budget
unpaced): the figure before issue #11. Needs PostgreSQL and Redis: --database-url (default
postgres://postgres@127.0.0.1:5432/bench_fair_budget) and --redis-url.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import (
    Proc,
    celery_worker,
    free_port,
    goods_in_posted_at,
    listening,
    loop_connection,
    loopback,
    new_account,
    percentile,
    process_env,
    recreate_database,
    sales_order,
    service_arguments,
    start_brightpearl,
    wait_for,
    web_process,
)

from returns.platforms.loop.sandbox import LoopSandbox

PER_DELIVERY_LIMIT = 75.0  # without lanes a webhook may wait for the whole minute


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=2000, help="new returns to drain")
    parser.add_argument("--webhooks", type=int, default=30, help="credited returns to receive")
    parser.add_argument("--duration", type=float, default=120.0, help="measured seconds")
    parser.add_argument("--interval", type=float, default=4.0, help="seconds between receipts")
    parser.add_argument("--budget", type=int, default=200, help="requests per 60 s period")
    parser.add_argument("--reserve", type=int, default=6, help="BRIGHTPEARL_RESERVED_FOR_INBOUND")
    parser.add_argument("--burst", type=int, default=100, help="BRIGHTPEARL_BULK_BURST")
    parser.add_argument("--timeout", type=float, default=900.0, help="whole run, seconds")
    service_arguments(parser, "bench_fair_budget")
    return parser.parse_args()


def seed(bp, loop, contact: int, prefix: str, count: int, fire: bool = False) -> None:
    rows = [("FAIR-SKU", 1, "10.00", "2.00")]
    orders = [sales_order(contact, f"#{prefix}{n}", f"{prefix}-{n}", rows) for n in range(count)]
    for start in range(0, count, 500):
        bp.seed(orders=orders[start : start + 500])
    for n in range(count):
        loop.add_return(
            lines=[{"sku": "FAIR-SKU", "quantity": 1}],
            order_name=f"#{prefix}{n}",
            order_id=f"{prefix}-{n}",
            currency="GBP",
            fire=fire,
        )


def receive_one(bp, rma, left, children) -> float:
    """Receive one credited return in the sandbox; seconds from the webhook's POST to the RMA
    line showing the received quantity."""
    from returns.models import RmaLine

    line_ids = list(RmaLine.objects.filter(rma=rma).values_list("pk", flat=True))
    note = bp.receive(rma.sales_credit.credit_id)["goodsNoteId"]

    def received():
        rows = RmaLine.objects.filter(pk__in=line_ids).values_list("quantity_received", "quantity")
        return all(got == want for got, want in rows) and time.time()

    done_at = wait_for(
        received, min(PER_DELIVERY_LIMIT, left()), f"goods-in note {note}", 0.01, children
    )
    return done_at - goods_in_posted_at(bp, note, min(10, left()))


def main() -> int:
    args = arguments()
    loopback(args.database_url)
    loopback(args.redis_url)
    started = time.monotonic()

    def left() -> float:
        remaining = args.timeout - (time.monotonic() - started)
        if remaining <= 0:
            raise SystemExit(f"stopped: the run took longer than --timeout {args.timeout:.0f} s")
        return remaining

    port = free_port()
    env = process_env(
        args.database_url,
        args.redis_url,
        f"bench-{secrets.token_hex(5)}",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        SILENCED_SYSTEM_CHECKS="connector.E101",  # webhooks to loopback, as in webhook_latency
        BRIGHTPEARL_REQUESTS_PER_MINUTE=str(args.budget),
        BRIGHTPEARL_RESERVED_FOR_INBOUND=str(args.reserve),
        BRIGHTPEARL_BULK_BURST=str(args.burst),
    )
    recreate_database(args.database_url)
    bp_server = start_brightpearl(env)
    loop = LoopSandbox(port=0, rate_limit=[(1_000_000, 60.0)]).start()
    logs = Path(tempfile.mkdtemp(prefix="bench-fair-"))
    children: list[Proc] = []
    finished = False
    try:
        figures = run(args, port, bp_server, loop, logs, children, left)
        finished = True
        return report(args, figures, started)
    finally:
        for proc in children:
            proc.stop()
        if finished:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            print(f"web and worker logs kept in {logs}", file=sys.stderr)
        loop.stop()
        bp_server.stop()


def set_up(args, bp_server, loop, children, port, logs, left):
    """The merchant: credited returns to receive later, webhooks registered, processes up."""
    from django.core.management import call_command

    from connector.models import SyncRun
    from connector.services import subscriptions
    from connector.services.sync import run_sync
    from returns.models import Rma

    call_command("migrate", verbosity=0)
    code, token = "fair" + secrets.token_hex(3), secrets.token_urlsafe(16)
    bp, contact = new_account(
        bp_server.url,
        code,
        token,
        contact={"firstName": "Ada", "lastName": "Bench", "email": "a@b.c"},
        products=[{"sku": "FAIR-SKU", "name": "Fair item", "price": "10.00"}],
    )
    bp.set_throttle(100_000, 60)  # setting up is not measured
    print(f"crediting {args.webhooks} returns to receive during the run …", flush=True)
    seed(bp, loop, contact, "W", args.webhooks)
    connection = loop_connection(f"Fair {code}", code, token, loop)
    run_sync(connection, trigger=SyncRun.Trigger.COMMAND)
    targets = list(
        Rma.objects.filter(connection=connection, sales_credit__credit_id__isnull=False)
        .select_related("sales_credit")
        .order_by("pk")
    )
    if len(targets) != args.webhooks:
        raise SystemExit(f"only {len(targets)} of {args.webhooks} credits were made")
    worker = celery_worker("worker", "worker", 2, logs)
    children += [web_process(port, logs), worker]
    wait_for(lambda: listening(port), min(60, left()), "the web process", 0.05, children)
    wait_for(lambda: "ready." in worker.log(), min(60, left()), "worker", 0.05, children)
    subscriptions.register(connection)
    print(f"putting a backlog of {args.backlog} new returns in Loop …", flush=True)
    seed(bp, loop, contact, "B", args.backlog)
    return bp, connection, targets


def deliver(args, bp, targets, first, latencies, left, children) -> None:
    """Receive one credited return every `--interval` seconds while the backlog drains."""
    from django.db import connection as db

    try:
        for index, rma in enumerate(targets):
            due = first + 2.0 + index * args.interval  # the backlog has spent its burst by then
            if due > first + args.duration - 5:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            latencies.append(receive_one(bp, rma, left, children))
    finally:
        db.close()


def run(args, port, bp_server, loop, logs, children, left) -> dict:
    from connector.models import SyncRun
    from connector.services.brightpearl import _throttle_store
    from connector.tasks import sync_connection

    bp, connection, targets = set_up(args, bp_server, loop, children, port, logs, left)
    store = _throttle_store()
    for key in store._redis.scan_iter(f"{store.prefix}*:{connection.brightpearl_account}:*"):
        store._redis.delete(key)
    bp.set_throttle(args.budget, 60)  # Brightpearl's limit from now on, a fresh period
    before = bp.stats()
    t0 = time.monotonic()
    sync_connection.delay(connection.pk, trigger=SyncRun.Trigger.BEAT)
    print(
        f"backlog sync queued; a goods-in webhook every {args.interval:.1f} s "
        f"for {args.duration:.0f} s …",
        flush=True,
    )
    # The budget is counted from the backlog's first Brightpearl request (before it, the sync
    # lists and stores the new returns: work that spends no budget) for `--duration` seconds.
    first = wait_for(
        lambda: bp.stats()["requests"] > before["requests"] and time.monotonic(),
        min(120, left()),
        "the backlog's first Brightpearl request",
        0.05,
        children,
    )
    latencies: list[float] = []
    deliveries = threading.Thread(
        target=deliver, args=(args, bp, targets, first, latencies, left, children), daemon=True
    )
    deliveries.start()
    series = []
    while (now := time.monotonic()) < first + args.duration:
        time.sleep(min(10.0, first + args.duration - now))
        series.append(bp.stats()["requests"])
    after = bp.stats()
    elapsed = time.monotonic() - first
    at_the_end = outcomes(connection, args.backlog, args.webhooks)
    deliveries.join(timeout=PER_DELIVERY_LIMIT + 10)
    throttled = after.get("status:503", 0) - before.get("status:503", 0)
    counts = [b - a for a, b in zip([before["requests"], *series], series, strict=False)]
    return {
        "latencies": latencies,
        "elapsed": elapsed,
        "idle": first - t0,
        "series": counts,
        "answered": after["requests"] - before["requests"] - throttled,
        "throttled": throttled,
        **at_the_end,
    }


def outcomes(connection, backlog: int, webhooks: int) -> dict:
    from connector.models import SalesCredit, SyncRun, WebhookEvent

    credited = SalesCredit.objects.filter(
        rma__connection=connection, credit_id__isnull=False
    ).count()
    runs = SyncRun.objects.filter(connection=connection)
    return {
        "pending": credited < backlog + webhooks,
        "credited": credited - webhooks,
        "failed_runs": runs.filter(status__in=[SyncRun.Status.FAILED]).count(),
        "failed_events": WebhookEvent.objects.filter(
            connection=connection, status=WebhookEvent.Status.FAILED
        ).count(),
    }


def report(args, f: dict, started: float) -> int:
    ms = [v * 1000 for v in f["latencies"]]
    capacity = args.budget * f["elapsed"] / 60.0
    used = f["answered"] / capacity
    print()
    print(
        f"backlog of {args.backlog} returns at {args.budget} requests/min, reserve "
        f"{args.reserve}, burst {args.burst}: {f['credited']} credited in {f['elapsed']:.0f} s"
        + ("" if f["pending"] else " — the backlog was done before the end: not all pending")
    )
    print(
        f"  first Brightpearl request {f['idle']:.1f} s after the sync was queued; requests "
        f"per 10 s since: {' '.join(str(n) for n in f['series'])}"
    )
    print(f"  webhook POST → RMA updated, {len(ms)} deliveries while it drains:")
    print(f"    p50 {percentile(ms, 50):8.1f} ms")
    print(f"    max {max(ms):8.1f} ms, mean {statistics.fmean(ms):.1f} ms")
    print(
        f"  throttling failures: {f['throttled']} answers 503, {f['failed_runs']} failed sync "
        f"runs, {f['failed_events']} failed events (target 0)"
    )
    print(f"  wall time {time.monotonic() - started:.1f} s")
    p95 = percentile(ms, 95)
    print(f"webhook → RMA updated p95 {p95:.1f} ms (target < 5000 ms)")
    print(
        f"budget used while work is pending: {f['answered']} of {capacity:.0f} = "
        f"{used * 100:.1f} % (target ≥ 95 %)"
    )
    failures = f["throttled"] + f["failed_runs"] + f["failed_events"]
    ok = p95 < 5000 and used >= 0.95 and failures == 0 and f["pending"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
