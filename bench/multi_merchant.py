"""Many merchants on shared workers (issue #12): do throttled neighbours delay everyone else?

    python bench/multi_merchant.py                                   (full size, see below)
    python bench/multi_merchant.py --merchants 12 --throttled 5 --backlog 0 --returns 3
    python bench/multi_merchant.py --kill-after 20                   (one worker SIGKILLed)

A thread sends the dispatcher task every `--tick` seconds, as beat does (production: 60 s).

Real processes on loopback: the Brightpearl sandbox (one account per merchant, each enforcing
its own request budget; the throttled ones `--throttled-budget` requests a minute) and one Loop
sandbox per merchant, threads of this process; `--workers` Celery worker processes (prefork,
`--concurrency` slots each) on Redis; PostgreSQL (a database of its own, recreated).

Merchants: `--throttled` of them limited to `--throttled-budget`/min by Brightpearl, one with a
`--backlog` of returns, the rest normal. Every merchant gets `--returns` new returns, arriving
over `--spread` seconds; each arrival queues an intake-triggered sync, as an intake POST does.
Time to credit = from that arrival until its sales credit exists in Brightpearl.

Prints, per group: p50/p95/max time to credit; then duplicates (more than one credit for a
return), cross-account requests (a request an account refused for someone else's
credentials), and, with --kill-after, how long after the kill the last return was credited.
The exit status is non-zero when a return is not credited, or anything is duplicated.
"""

from __future__ import annotations

import argparse
import re
import secrets
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from common import (
    Proc,
    celery_worker,
    loop_connection,
    new_account,
    percentile,
    process_env,
    recreate_database,
    sales_order,
    service_arguments,
    start_brightpearl,
    wait_for,
    worker_ready,
)

from returns.platforms.loop.sandbox import LoopSandbox


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--merchants", type=int, default=50)
    p.add_argument("--throttled", type=int, default=5)
    p.add_argument("--throttled-budget", type=int, default=20, help="requests/min, sandbox side")
    p.add_argument("--backlog", type=int, default=2000, help="returns waiting for one merchant")
    p.add_argument("--returns", type=int, default=3, help="new returns per merchant")
    p.add_argument("--spread", type=float, default=30.0, help="seconds over which they arrive")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--kill-after", type=float, default=0.0, help="SIGKILL worker 1 after N s")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument(
        "--tick",
        type=float,
        default=60.0,
        help="seconds between dispatcher ticks, as beat sends them (production: 60)",
    )
    service_arguments(p, "bench_mm")
    return p.parse_args()


def main() -> int:  # noqa: C901, PLR0915 - one script, read top to bottom
    args = parse()
    queue = f"mm-{secrets.token_hex(5)}"
    env = process_env(
        args.database_url,
        args.redis_url,
        queue,
        CACHE_KEY_PREFIX=queue,
        WEBHOOKS_ENABLED="false",
        SILENCED_SYSTEM_CHECKS="connector.E101",
    )
    recreate_database(args.database_url)
    bp_server = start_brightpearl(env)
    # Django is set up only now, with the benchmark's environment.
    from django.core.management import call_command

    from connector.models import BindingState, SalesCredit, SyncRun
    from connector.tasks import dispatch_due_syncs, request_sync_soon, sync_connection

    logs = Path(tempfile.mkdtemp(prefix="bench-mm-"))
    loops: list[LoopSandbox] = []
    procs: list[Proc] = []
    try:
        call_command("migrate", verbosity=0)
        merchants = []
        for n in range(args.merchants):
            kind = (
                "throttled"
                if n < args.throttled
                else ("backlog" if n == args.throttled and args.backlog else "normal")
            )
            code = f"mm{n}x{secrets.token_hex(2)}"
            token = secrets.token_urlsafe(16)
            control, contact = new_account(
                bp_server.url,
                code,
                token,
                contact={"firstName": "M", "lastName": str(n), "email": f"m{n}@shop.test"},
                products=[{"sku": "MUG", "name": "Mug", "price": "10.00"}],
            )
            if kind == "throttled":
                control.set_throttle(budget=args.throttled_budget, window_seconds=60)
            loop = LoopSandbox(port=0, rate_limit=[(100_000, 60.0)]).start()
            loops.append(loop)
            connection = loop_connection(
                f"Merchant {n} ({kind})", code, token, loop, sync_interval_minutes=60
            )
            merchants.append(
                {
                    "n": n,
                    "kind": kind,
                    "control": control,
                    "contact": contact,
                    "loop": loop,
                    "connection": connection,
                    "code": code,
                }
            )

        def new_return(m, label: str) -> str:
            name, shop_id = f"#{label}", f"shop-{label}-{secrets.token_hex(3)}"
            rows = [("MUG", 1, "10.00", "2.00")]
            m["control"].seed(orders=[sales_order(m["contact"], name, shop_id, rows)])
            made = m["loop"].add_return(
                lines=[{"sku": "MUG"}],
                order_name=name,
                order_id=shop_id,
                currency="GBP",
                fire=False,
            )
            return str(made["id"])

        backlog = [m for m in merchants if m["kind"] == "backlog"]
        for m in backlog:
            for i in range(args.backlog):
                new_return(m, f"B{m['n']}-{i}")
        print(f"{len(merchants)} merchants seeded; logs in {logs}", flush=True)

        for w in range(1, args.workers + 1):
            proc = celery_worker(f"worker-{w}", f"{queue}-{w}", args.concurrency, logs)
            procs.append(proc)
            wait_for(lambda p=proc: worker_ready(p), 90, proc.name)

        started = time.monotonic()
        for m in backlog:
            sync_connection.delay(m["connection"].pk, trigger=SyncRun.Trigger.ADMIN)
        arrivals: dict[tuple[int, str], float] = {}  # (connection, loop return id) → arrival
        kinds = {m["connection"].pk: m["kind"] for m in merchants}
        schedule = (
            sorted(
                (
                    args.spread * (i * len(merchants) + m["n"]) / (args.returns * len(merchants)),
                    m,
                    i,
                )
                for i in range(args.returns)
                for m in merchants
            )
            if args.returns
            else []
        )

        def arrive() -> None:
            for at, m, i in schedule:
                time.sleep(max(0.0, started + at - time.monotonic()))
                rid = new_return(m, f"N{m['n']}-{i}")
                arrivals[(m["connection"].pk, rid)] = time.monotonic()
                # As a webhook or intake POST asks: one pending sync per connection.
                request_sync_soon(m["connection"].pk, SyncRun.Trigger.WEBHOOK)

        feeder = threading.Thread(target=arrive, daemon=True)
        feeder.start()

        def beat() -> None:
            # What beat does in production: the dispatcher every tick (scheduled syncs, and
            # recovery of what a lost worker left: lapsed leases, pending tasks never started).
            while True:
                time.sleep(args.tick)
                dispatch_due_syncs.delay()

        threading.Thread(target=beat, daemon=True).start()
        killed_at = None
        credited: dict[tuple[int, str], float] = {}
        expected = len(schedule) + args.backlog * len(backlog)
        deadline = started + args.timeout
        while time.monotonic() < deadline:
            if (
                args.kill_after
                and killed_at is None
                and time.monotonic() - started >= args.kill_after
            ):
                procs[0].kill_group()
                killed_at = time.monotonic()
                print(f"killed worker-1 at +{killed_at - started:.1f}s", flush=True)
            now = time.monotonic()
            for pk, rid in SalesCredit.objects.filter(state=BindingState.CREATED).values_list(
                "rma__connection_id", "rma__external_id"
            ):
                credited.setdefault((pk, rid), now)
            if not feeder.is_alive() and len(credited) >= expected:
                break
            time.sleep(0.25)
        finished = time.monotonic()

        def times(kind: str) -> list[float]:
            return [
                credited[key] - at
                for key, at in arrivals.items()
                if kinds[key[0]] == kind and key in credited
            ]

        print(
            f"\nmerchants {len(merchants)} (throttled {args.throttled} at "
            f"{args.throttled_budget}/min, backlog {args.backlog}), workers {args.workers} x "
            f"{args.concurrency} slots, {len(schedule)} new returns over {args.spread:.0f}s"
        )
        for kind in ("normal", "throttled", "backlog"):
            values = times(kind)
            if values:
                print(
                    f"time to credit, {kind:9}: p50 {percentile(values, 50):6.1f}s  "
                    f"p95 {percentile(values, 95):6.1f}s  max {max(values):6.1f}s  "
                    f"(n={len(values)})"
                )
        duplicates = 0
        cross = 0
        for m in merchants:
            state = m["control"].state()
            parents = Counter(
                o["parentOrderId"] for o in state["orders"] if o["orderTypeCode"] == "SC"
            )
            duplicates += sum(c - 1 for c in parents.values() if c > 1)
            cross += sum(1 for r in m["control"].requests() if r.get("status") == 401)
        missing = expected - len(credited)
        print(f"credited {len(credited)}/{expected} in {finished - started:.1f}s")
        if killed_at is not None:
            after_kill(credited, kinds, killed_at, finished)
        sync_work(logs, SyncRun, kinds)
        print(f"duplicates {duplicates}")
        print(f"cross-account requests {cross}")
        print(f"not credited {missing}")
        return 1 if (duplicates or missing or cross) else 0
    finally:
        for proc in procs:
            proc.stop()
        for loop in loops:
            loop.stop()
        bp_server.stop()
        from django.db import connections

        connections.close_all()
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def sync_work(logs: Path, run_model, kinds: dict) -> None:
    """What the syncs cost the workers: tasks received (from the workers' logs) and rows the
    runs stored, per group; "paused" rows are runs still stopped by a spent budget, "pauses"
    how often runs paused and went on in the same row, "handed on" rows runs whose turn on the
    inbound queue ended (the rest went on in another run)."""
    received = sum(
        len(re.findall(r"Task connector\.tasks\.sync_connection\[[^\]]+\] received", text))
        for text in (f.read_text(errors="replace") for f in logs.glob("*.log"))
    )
    print(f"sync tasks received by the workers {received}")
    for kind in ("normal", "throttled", "backlog"):
        group = [pk for pk, k in kinds.items() if k == kind]
        rows = run_model.objects.filter(connection_id__in=group)
        if rows.exists():
            pauses = sum(c.get("budget_pauses", 0) for c in rows.values_list("counts", flat=True))
            print(
                f"sync runs stored, {kind:9}: {rows.count()} "
                f"(paused {rows.filter(message__startswith='Paused').count()}, pauses {pauses}, "
                f"handed on {rows.filter(message__startswith='Handed on').count()})"
            )


def after_kill(credited: dict, kinds: dict, killed_at: float, finished: float) -> None:
    """Recovery after the kill, per group: the last credit after it and the longest stretch
    in which the group got no credit at all (a stalled merchant; for the backlog merchant,
    its drain stopping), counted from the kill."""
    last = max(credited.values(), default=killed_at)
    print(f"last credit {last - killed_at:.1f}s after the kill")
    for kind in ("normal", "throttled", "backlog"):
        stamps = sorted(at for key, at in credited.items() if kinds[key[0]] == kind)
        if not stamps:
            continue
        later = [at for at in stamps if at >= killed_at]
        points = [killed_at, *later] + ([finished] if kind == "backlog" else [])
        stall = max((b - a for a, b in zip(points, points[1:], strict=False)), default=0.0)
        print(
            f"after the kill, {kind:9}: last credit +{max(stamps[-1] - killed_at, 0):6.1f}s, "
            f"longest stretch with no credit {stall:6.1f}s ({len(later)} credited after it)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
