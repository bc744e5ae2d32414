"""Chaos proof (issue #9): returns through the whole lifecycle while Brightpearl misbehaves.

    python bench/chaos.py [--returns 1000] [--kills 2] [--seed 9]      (full size)
    python bench/chaos.py --returns 40 --arrival-rate 4 --settle-timeout 45   (CI size)

Real processes, all on loopback: the Brightpearl and Loop sandboxes (real HTTP servers, threads
of this process), a connector web process (`manage.py runserver`) that receives the Loop and
Brightpearl webhooks, and a real Celery worker (prefork) on Redis; PostgreSQL is the database
(one of its own, recreated each run).

What goes wrong on purpose, while returns arrive:
* Brightpearl: a share of all requests answered 5xx (nothing written), of writes committed and
  the connection dropped, of writes committed only after the client's timeout (`delay`), of
  writes committed at once but answered after the timeout (`late`), a budget tight enough to
  force 503s plus injected 503s with and without the budget headers;
* syncs triggered every few seconds, often two at once (overlapping);
* every Loop webhook delivered three times, out of order (one copy of each, stale, much later),
  and every Brightpearl webhook three times within 3 s in any order;
* the Celery worker SIGKILLed mid-run (the whole worker, then a pool child) and restarted.

The warehouse (this script, through the sandbox's control API) receives each credit: most in
full (→ processed on Loop, refunded → customer payment), some into quarantine (→ processed),
some short with the credit moved to "Goods received" (→ flagged with the reason); some returns
name an item never sold on the order (→ flagged, no credit). Then the faults stop and the
system is given time to settle.

The last four lines are the counts the issue asks for; the exit status is non-zero when any
of them is: duplicate credits, duplicate payments, returns lost or stuck (not at their end
state: processed, or flagged with a reason — the one the warehouse's receipt calls for),
credits whose totals are off by a cent.

Needs PostgreSQL and Redis: --database-url (default postgres://postgres@127.0.0.1:5432/
bench_chaos, recreated) and --redis-url (default redis://127.0.0.1:6379/0). Loopback only.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import random
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from common import (
    Proc,
    celery_worker,
    free_port,
    listening,
    loop_connection,
    loopback,
    new_account,
    process_env,
    recreate_database,
    sales_order,
    service_arguments,
    start_brightpearl,
    wait_for,
    web_process,
    worker_ready,
)

from returns.platforms.loop.sandbox import LoopSandbox

CENT = Decimal("0.01")
RECEIVED_STATUS = 12  # the sandbox's "Goods received" sales-credit status
EXTERNAL_REF = re.compile(r"^rbc:\d+:loop:(?P<rid>\d+)$")

# Order templates: (sku, quantity on the order, row net, row tax). Awkward cents on purpose.
SKUS = {"A": "CHAOS-A", "B": "CHAOS-B", "C": "CHAOS-C", "D": "CHAOS-D"}
NOT_SOLD = "CHAOS-NOT-SOLD"


@dataclass
class Return:
    """One planned Loop return and what should become of it."""

    index: int
    order_key: int
    lines: list[tuple[str, int]]  # (sku, units)
    expect: str  # "processed" | "flagged"
    receive: str  # "full" | "quarantine" | "short" | "none"
    return_id: int = 0
    arrived_at: float = 0.0


@dataclass
class Order:
    key: int
    rows: list[tuple[str, int, Decimal, Decimal]]
    order_id: int = 0
    name: str = ""
    shop_id: str = ""


@dataclass
class Plan:
    orders: dict[int, Order] = field(default_factory=dict)
    returns: list[Return] = field(default_factory=list)


def make_plan(n: int, rng: random.Random) -> Plan:
    """N returns over a mix of orders; 'split' orders get three returns of one unit each."""
    plan = Plan()
    keys = itertools.count()

    def order(rows) -> Order:
        o = Order(next(keys), [(SKUS[s], q, Decimal(net), Decimal(tax)) for s, q, net, tax in rows])
        plan.orders[o.key] = o
        return o

    def add(o: Order, lines, expect="processed", receive="full") -> None:
        plan.returns.append(Return(len(plan.returns), o.key, lines, expect, receive))

    while len(plan.returns) < n:
        roll = rng.random()
        if roll < 0.15 and n - len(plan.returns) >= 3:
            # Three returns of 1 of 3 units on a row of 10.00 net / 2.00 tax.
            o = order([("A", 3, "10.00", "2.00")])
            for _ in range(3):
                add(o, [(SKUS["A"], 1)])
        elif roll < 0.27:
            o = order([("B", 7, "99.99", "19.99")])  # 3 of 7: 42.853… net
            add(o, [(SKUS["B"], 3)])
        elif roll < 0.34:
            o = order([("C", 2, "20.00", "4.00")])
            add(o, [(SKUS["C"], 2)], expect="flagged", receive="short")
        elif roll < 0.39:
            o = order([("D", 1, "24.99", "5.00")])
            add(o, [(NOT_SOLD, 1)], expect="flagged", receive="none")
        elif roll < 0.47:
            o = order([("D", 1, "24.99", "5.00")])
            add(o, [(SKUS["D"], 1)], receive="quarantine")
        else:
            o = order([("C", 2, "20.00", "4.00"), ("D", 1, "5.00", "1.00")])
            add(o, [(SKUS["C"], 2), (SKUS["D"], 1)])
    return plan


class Deliverer:
    """Sends Loop webhooks at their due times (a heap), each event three times, out of order."""

    def __init__(self, loop, url: str, rng: random.Random, threads: int = 2):
        import requests

        self.loop, self.url, self.rng = loop, url, rng
        self.session = requests.Session()
        self.heap: list = []
        self.lock = threading.Condition()
        self.seq = itertools.count()
        self.sent: Counter[str] = Counter()
        self.stopping = False
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def event(self, return_id: int, trigger: str) -> None:
        """Three copies of the body as it is now: two soon, in any order, one much later."""
        body = self.loop.webhook_body(return_id, trigger)
        signature = self.loop.sign(body)
        now = time.monotonic()
        for delay in (self.rng.uniform(0, 3), self.rng.uniform(0, 3), self.rng.uniform(5, 20)):
            with self.lock:
                heapq.heappush(self.heap, (now + delay, next(self.seq), body, signature))
                self.lock.notify()

    def pending(self) -> int:
        with self.lock:
            return len(self.heap)

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.stopping and (not self.heap or self.heap[0][0] > time.monotonic()):
                    timeout = self.heap[0][0] - time.monotonic() if self.heap else 0.5
                    self.lock.wait(max(0.01, min(timeout, 0.5)))
                if self.stopping:
                    return
                _, _, body, signature = heapq.heappop(self.heap)
            try:
                answer = self.session.post(
                    self.url,
                    data=body,
                    headers={"Content-Type": "application/json", "X-Loop-Signature": signature},
                    timeout=10,
                )
                self.sent[str(answer.status_code)] += 1
            except Exception as exc:  # the web process is down or slow: Loop would retry
                self.sent[type(exc).__name__] += 1

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.lock.notify_all()


class Every(threading.Thread):
    """Run `action` every `seconds` until stopped; errors are counted, never fatal."""

    def __init__(self, seconds: float, action):
        super().__init__(daemon=True)
        self.seconds, self.action = seconds, action
        self.stopped = threading.Event()
        self.errors: Counter[str] = Counter()

    def run(self) -> None:
        from django.db import connection

        while not self.stopped.wait(self.seconds):
            try:
                self.action()
            except Exception as exc:
                self.errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
        connection.close()


def main() -> int:  # noqa: C901, PLR0915 - one script, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--returns", type=int, default=1000)
    parser.add_argument("--arrival-rate", type=float, default=5.0, help="returns per second")
    parser.add_argument("--sync-every", type=float, default=3.0, help="seconds between triggers")
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs (worker, then a child, …)")
    parser.add_argument("--error-rate", type=float, default=0.10, help="share of requests 5xx")
    parser.add_argument("--drop-rate", type=float, default=0.05, help="writes committed, dropped")
    parser.add_argument("--late-rate", type=float, default=0.05, help="writes past the timeout")
    parser.add_argument("--throttle-rate", type=float, default=0.01, help="injected 503s")
    parser.add_argument(
        "--client-budget",
        type=int,
        default=1200,
        help="BRIGHTPEARL_REQUESTS_PER_MINUTE: what the connector believes it may spend",
    )
    parser.add_argument(
        "--budget", type=int, default=300, help="what the sandbox allows per window (less: 503s)"
    )
    parser.add_argument("--window", type=float, default=20.0, help="sandbox throttle window, s")
    parser.add_argument("--client-timeout", type=float, default=2.0, help="BRIGHTPEARL_TIMEOUT")
    parser.add_argument("--late-seconds", type=float, default=8.0)
    parser.add_argument(
        "--attempt-lease", type=int, default=15, help="CREDIT_ATTEMPT_LEASE_SECONDS"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool size")
    parser.add_argument(
        "--storm-seconds", type=float, default=120.0, help="faults on after arrivals"
    )
    parser.add_argument("--settle-timeout", type=float, default=300.0, help="faults off, then wait")
    parser.add_argument(
        "--instance-id", type=int, default=0, help="send one (OAuth-like); 0 = none"
    )
    parser.add_argument(
        "--wakeup-returns",
        type=int,
        default=5,
        help="after settling: returns that arrive (no webhook) while a sync runs and a second "
        "sync is requested; they must not wait for the next schedule",
    )
    parser.add_argument("--wakeup-timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=9)
    service_arguments(parser, "bench_chaos")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.returns <= 5000:
        raise SystemExit("--returns must be between 1 and 5000")
    if args.late_seconds <= args.client_timeout:
        raise SystemExit("--late-seconds must exceed --client-timeout (that is the point)")
    loopback(args.database_url)
    loopback(args.redis_url)
    started = time.monotonic()
    rng = random.Random(args.seed)
    plan = make_plan(args.returns + args.wakeup_returns, rng)
    # The last few arrive during a running sync, known only by polling (no webhook).
    wakeup = plan.returns[args.returns :]
    wakeup_ids = {id(r) for r in wakeup}

    port = free_port()
    queue = f"chaos-{secrets.token_hex(5)}"
    env = process_env(
        args.database_url,
        args.redis_url,
        queue,
        # Everything here lives on loopback (E101); the write lease is short so a run ends in
        # minutes, yet still longer than the slowest injected answer (E010 asks for 60 s more
        # than the client timeout, for Brightpearl's real, unknown, slowest answer).
        SILENCED_SYSTEM_CHECKS="connector.E101,connector.E010",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        BRIGHTPEARL_TIMEOUT=str(args.client_timeout),
        CREDIT_ATTEMPT_LEASE_SECONDS=str(args.attempt_lease),
        BRIGHTPEARL_REQUESTS_PER_MINUTE=str(args.client_budget),
    )
    recreate_database(args.database_url)
    bp_server = start_brightpearl(env)
    # Django is set up only now, with the benchmark's environment.
    from django.core.management import call_command

    from connector.models import (
        BindingState,
        Connection,
        RefundPayment,
        SalesCredit,
        SyncRun,
        WebhookEvent,
    )
    from connector.services import subscriptions
    from connector.tasks import sync_connection
    from returns.models import Refund, Rma

    loop = LoopSandbox(port=0, rate_limit=[(100_000, 60.0)]).start()
    logs = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    procs: dict[str, Proc] = {}
    threads: list[Every] = []
    deliverer = None
    ok = False
    try:
        call_command("migrate", verbosity=0)
        code = "chaos" + secrets.token_hex(3)
        token = secrets.token_urlsafe(16)
        bp, contact = new_account(
            bp_server.url,
            code,
            token,
            contact={"firstName": "Chaos", "lastName": "Monkey", "email": "c@m.x"},
            products=[{"sku": sku, "name": sku, "price": "10.00"} for sku in SKUS.values()]
            + [{"sku": NOT_SOLD, "name": "never sold", "price": "1.00"}],
            installed_integration_instance_id=args.instance_id or None,
        )
        account = bp_server.state.get(code)
        orders = list(plan.orders.values())
        for o in orders:
            o.name, o.shop_id = f"#C{o.key}", f"chaos-shop-{o.key}-{secrets.token_hex(2)}"
        ids = bp.seed(orders=[sales_order(contact, o.name, o.shop_id, o.rows) for o in orders])[
            "orders"
        ]
        for o, order_id in zip(orders, ids, strict=True):
            o.order_id = order_id
        connection = loop_connection(
            f"Chaos {code}",
            code,
            token,
            loop,
            brightpearl_installed_integration_instance_id=args.instance_id or None,
            platform_webhook_secret=loop.webhook_secret,
            received_status_id=RECEIVED_STATUS,
        )
        webhook_url = (
            f"http://127.0.0.1:{port}/webhooks/loop/{connection.pk}/{connection.webhook_secret}/"
        )

        procs["web"] = web_process(port, logs)
        workers = itertools.count(1)

        def start_worker() -> Proc:
            n = next(workers)
            proc = celery_worker(f"worker-{n}", f"{queue}-{n}", args.concurrency, logs)
            wait_for(lambda: worker_ready(proc), 60, proc.name)
            proc.check()
            return proc

        procs["worker"] = start_worker()
        wait_for(lambda: listening(port), 60, "the web process")
        subscriptions.register(connection)  # Brightpearl webhooks → the web process
        setup_seconds = time.monotonic() - started
        print(
            f"setup {setup_seconds:.1f} s: {len(plan.returns)} returns on {len(orders)} orders; "
            f"web :{port}, worker queue {queue}, logs {logs}",
            flush=True,
        )

        # ---------------------------------------------------------------- the storm begins
        bp.set_throttle(budget=args.budget, window_seconds=args.window)

        def share(rate: float, before: float) -> float:
            """Conditional probability so the marginal rate is `rate` after earlier faults."""
            return min(1.0, rate / max(1e-9, 1.0 - before))

        e, d, lt, th = args.error_rate, args.drop_rate, args.late_rate, args.throttle_rate
        faults = [
            dict(path=".", kind="throttle", probability=th / 2, headers=False),
            dict(path=".", kind="throttle", probability=share(th / 2, th / 2)),
            dict(path=".", kind="error", status=500, probability=share(e / 2, th)),
            dict(path=".", kind="error", status=502, probability=share(e / 2, th + e / 2)),
            dict(path=".", kind="drop", method="POST", probability=share(d, th + e)),
            dict(
                path=".",
                kind="delay",
                method="POST",
                seconds=args.late_seconds,
                probability=share(lt / 2, th + e + d),
            ),
            dict(
                path=".",
                kind="late",
                method="POST",
                seconds=args.late_seconds,
                probability=share(lt / 2, th + e + d + lt / 2),
            ),
        ]
        for n, fault in enumerate(faults):
            bp.add_fault(times=None, seed=args.seed * 100 + n, **fault)
        # Brightpearl's webhooks too: each three times, in no fixed order.
        bp.set_webhook_chaos(copies=3, max_delay=3.0, seed=args.seed)

        deliverer = Deliverer(loop, webhook_url, random.Random(args.seed + 1))
        triggers = Counter()

        def beat() -> None:
            sync_connection.apply_async((connection.pk,), {"trigger": SyncRun.Trigger.BEAT})
            triggers["beat"] += 1
            if rng.random() < 0.3:  # an overlapping run (staff pressed "run sync now")
                sync_connection.apply_async((connection.pk,), {"trigger": SyncRun.Trigger.ADMIN})
                triggers["admin"] += 1

        by_return_id: dict[int, Return] = {}
        warehouse_done: dict[int, str] = {}  # return id → what the warehouse did
        warehouse_errors: Counter[str] = Counter()
        credit_seen_at: dict[int, float] = {}

        def warehouse() -> None:
            """Receive each return's (first) credit a little after it appears in Brightpearl."""
            with bp_server.state.lock:
                credits = [
                    (o["id"], o["externalRef"], [(r["id"], r["quantity"]) for r in o["rows"]])
                    for o in account.orders.values()
                    if o["orderTypeCode"] == "SC"
                ]
            now = time.monotonic()
            for credit_id, external_ref, rows in sorted(credits):
                found = EXTERNAL_REF.match(external_ref or "")
                ret = by_return_id.get(int(found["rid"])) if found else None
                if ret is None or ret.return_id in warehouse_done or ret.receive == "none":
                    continue
                seen = credit_seen_at.setdefault(credit_id, now)
                if now - seen < 1.0:
                    continue
                try:
                    if ret.receive == "short":
                        row_id, qty = rows[0]
                        bp.receive(
                            credit_id, rows=[{"rowId": row_id, "quantity": int(float(qty)) - 1}]
                        )
                        bp.set_order_status(credit_id, RECEIVED_STATUS)
                    else:
                        bp.receive(credit_id, quarantine=ret.receive == "quarantine")
                except Exception as exc:
                    warehouse_errors[f"{type(exc).__name__}: {exc}"[:160]] += 1
                    continue
                warehouse_done[ret.return_id] = ret.receive

        seen_actions = [0]

        def loop_events() -> None:
            """Loop fires a webhook when the connector processes or flags a return."""
            with loop.lock:
                new = loop.actions[seen_actions[0] :]
                seen_actions[0] = len(loop.actions)
            for action in new:
                trigger = {"process": "return.closed", "flag": "return.updated"}.get(
                    action["action"]
                )
                if trigger:
                    deliverer.event(action["return_id"], trigger)

        threads = [Every(args.sync_every, beat), Every(0.5, warehouse), Every(0.5, loop_events)]
        for thread in threads:
            thread.start()

        # Kills: spread over the arrivals, each when a credit attempt is in flight if possible.
        kill_at = {
            int(len(plan.returns) * (k + 1) / (args.kills + 1)): k for k in range(args.kills)
        }
        kills_done: list[str] = []

        def kill(k: int) -> None:
            try:
                wait_for(
                    lambda: (
                        SalesCredit.objects.filter(state=BindingState.ATTEMPTING)
                        .exclude(attempt_owner="")
                        .exists()
                    ),
                    10,
                    "a credit attempt in flight",
                    interval=0.02,
                )
                in_flight = "during a credit attempt"
            except SystemExit:
                in_flight = "(no credit attempt seen in flight)"
            worker = procs["worker"]
            if k % 2 == 0:
                worker.kill_group()
                kills_done.append(f"SIGKILL worker {worker.name} and its pool {in_flight}")
                procs[f"dead-{worker.name}"] = worker
                procs["worker"] = start_worker()
            else:
                children = worker.children()
                if not children:
                    kills_done.append("no pool child to kill")
                    return
                os.kill(children[0], signal.SIGKILL)
                kills_done.append(f"SIGKILL pool child {children[0]} {in_flight}")

        # ---------------------------------------------------------------- arrivals
        storm_started = time.monotonic()
        interval = 1.0 / args.arrival_rate

        def arrive(ret: Return) -> None:
            o = plan.orders[ret.order_key]
            record = loop.add_return(
                lines=[
                    {"sku": sku, "quantity": units, "price": "10.00", "tax": "2.00"}
                    for sku, units in ret.lines
                ],
                order_name=o.name,
                order_id=o.shop_id,
                currency="GBP",
                fire=False,
            )
            ret.return_id, ret.arrived_at = int(record["id"]), time.monotonic()
            by_return_id[ret.return_id] = ret

        for ret in plan.returns:
            if id(ret) in wakeup_ids:
                continue
            arrive(ret)
            deliverer.event(ret.return_id, "return.created")
            if ret.index in kill_at:
                kill(kill_at[ret.index])
            procs["web"].check()
            time.sleep(max(0.0, ret.arrived_at + interval - time.monotonic()))
        arrivals_seconds = time.monotonic() - storm_started
        print(f"arrivals done in {arrivals_seconds:.1f} s; kills: {kills_done}", flush=True)

        # ---------------------------------------------------------------- outcomes
        def loop_view() -> dict[int, dict]:
            with loop.lock:
                return {
                    rid: {"state": r["state"], "refunds": len(r["refunds"])}
                    for rid, r in loop.returns.items()
                }

        def outcomes() -> dict[int, str]:
            """return id → processed | flagged | lost | stuck: <why>."""
            views = loop_view()
            rmas = {
                int(r.external_id): r
                for r in Rma.objects.filter(connection=connection).select_related("sales_credit")
            }
            paid = Counter(
                RefundPayment.objects.filter(
                    connection=connection, state=BindingState.CREATED
                ).values_list("refund__rma__external_id", flat=True)
            )
            refunds = Counter(
                Refund.objects.filter(rma__connection=connection).values_list(
                    "rma__external_id", flat=True
                )
            )
            result = {}
            for ret in plan.returns:
                rid = ret.return_id
                if not rid:
                    continue  # not arrived (yet)
                rma, view = rmas.get(rid), views.get(rid, {})
                binding = getattr(rma, "sales_credit", None) if rma else None
                if rma is None:
                    result[rid] = "lost"
                elif rma.flagged and rma.flag_reason and view.get("state") == "review":
                    result[rid] = "flagged"
                elif (
                    view.get("state") == "closed"
                    and refunds[str(rid)] == view.get("refunds")
                    and paid[str(rid)] == view.get("refunds")
                ):
                    result[rid] = "processed"
                else:
                    state = binding.state if binding else "no binding"
                    result[rid] = (
                        f"stuck: rma {rma.status}, credit {state}, loop {view.get('state')}, "
                        f"refunds {refunds[str(rid)]}/{view.get('refunds')} paid {paid[str(rid)]}"
                    )
            return result

        def wait_settled(limit: float, label: str) -> float:
            t0 = last = time.monotonic()
            while time.monotonic() - t0 < limit:
                now = outcomes()
                if all(v in ("processed", "flagged") for v in now.values()):
                    break
                if time.monotonic() - last >= 15:
                    last = time.monotonic()
                    tally = Counter(v.split(":")[0] for v in now.values())
                    print(f"  {label} +{last - t0:.0f} s: {dict(tally)}", flush=True)
                procs["web"].check()
                time.sleep(2.0)
            return time.monotonic() - t0

        storm_tail = wait_settled(args.storm_seconds, "storm")
        storm_seconds = time.monotonic() - storm_started
        stats_storm = bp.stats()
        # The storm passes: no more injected faults, a budget as large as the client believes.
        bp.clear_faults()
        bp.set_webhook_chaos()
        bp.set_throttle(budget=args.client_budget, window_seconds=60)
        settle_seconds = wait_settled(args.settle_timeout, "settle")

        # ------------------------------------------------- wakeup: a sync requested mid-run
        wakeup_note, wakeup_seconds = "not run", 0.0
        if wakeup:
            threads[0].stopped.set()  # no more schedule: only what the connector remembers
            threads[0].join(timeout=30)
            lease_note = ""
            try:
                wait_for(
                    lambda: Connection.objects.filter(
                        pk=connection.pk, sync_lease_owner=""
                    ).exists(),
                    20,
                    "the last scheduled sync to finish",
                )
            except SystemExit:
                lease_note = "; the run lease was still held (by a lost worker?)"
            bp.set_latency(0.5)  # a sync that takes a while
            t0 = time.monotonic()
            since = SyncRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            sync_connection.apply_async((connection.pk,), {"trigger": SyncRun.Trigger.BEAT})
            first = None
            try:
                first = wait_for(
                    lambda: SyncRun.objects.filter(
                        pk__gt=since, trigger=SyncRun.Trigger.BEAT
                    ).first(),
                    20,
                    "the wakeup phase's first sync",
                    interval=0.02,
                )
            except SystemExit:
                pass
            time.sleep(0.3)  # past its pull from Loop
            for ret in wakeup:
                arrive(ret)  # no webhook: only a pull finds them
            sync_connection.apply_async((connection.pk,), {"trigger": SyncRun.Trigger.ADMIN})
            if first is not None:
                first = wait_for(
                    lambda: (
                        SyncRun.objects.exclude(status=SyncRun.Status.RUNNING)
                        .filter(pk=first.pk)
                        .first()
                    ),
                    60,
                    "the wakeup phase's first sync to end",
                )
            bp.set_latency(0)
            second = (
                SyncRun.objects.filter(pk__gt=since, trigger=SyncRun.Trigger.ADMIN)
                .order_by("pk")
                .first()
            )
            wakeup_note = (
                f"first sync {first.status if first else 'not started'}"
                + (f" ({first.message[:60]})" if first and first.message else "")
                + f"; the requested one {second.status if second else 'not run (yet)'}"
                + lease_note
            )
            deadline = time.monotonic() + args.wakeup_timeout
            while time.monotonic() < deadline:
                now = outcomes()
                if all(now.get(r.return_id) in ("processed", "flagged") for r in wakeup):
                    break
                time.sleep(1.0)
            wakeup_seconds = time.monotonic() - t0
        for thread in threads:
            thread.stopped.set()
        for thread in threads:
            thread.join(timeout=30)
        deliverer.stop()
        total_seconds = time.monotonic() - started

        # ---------------------------------------------------------------- the counts
        final = outcomes()
        with bp_server.state.lock:
            credit_docs = [
                dict(o, rows=[dict(r) for r in o["rows"]])
                for o in account.orders.values()
                if o["orderTypeCode"] == "SC"
            ]
            payments = [dict(p) for p in account.customer_payments.values()]
        credits_by_return: dict[int, list[dict]] = defaultdict(list)
        foreign = 0
        for credit in credit_docs:
            found = EXTERNAL_REF.match(credit["externalRef"] or "")
            if found:
                credits_by_return[int(found["rid"])].append(credit)
            else:
                foreign += 1
        duplicate_credits = sum(len(v) - 1 for v in credits_by_return.values()) + foreign
        by_ref = Counter(p["transactionRef"] for p in payments)
        duplicate_payments = sum(n - 1 for n in by_ref.values() if n > 1)
        refunds_per_credit = Counter()
        for view_rid, view in loop_view().items():
            for credit in credits_by_return.get(view_rid, [])[:1]:
                refunds_per_credit[credit["id"]] = view["refunds"]
        payments_per_credit = Counter(
            p["orderId"] for p in payments if p["paymentType"] == "PAYMENT"
        )
        over_paid = sum(
            max(0, n - refunds_per_credit.get(cid, 0)) for cid, n in payments_per_credit.items()
        )
        duplicate_payments = max(duplicate_payments, over_paid)

        # Cent-exact: each credit row a whole number of cents within a cent of the exact
        # pro-rata share; the credits of a fully credited order row add up to that row.
        off: set[int] = set()
        row_sums: dict[tuple[int, str], list] = defaultdict(lambda: [0, CENT * 0, CENT * 0, []])
        for rid, credits in credits_by_return.items():
            ret = by_return_id.get(rid)
            if ret is None:
                continue
            o = plan.orders[ret.order_key]
            credit = min(credits, key=lambda c: c["id"])
            for row in credit["rows"]:
                sku = next((s for s, *_ in o.rows if row.get("sku") == s), None)
                if sku is None:
                    continue
                _, qty, net, tax = next(r for r in o.rows if r[0] == sku)
                units = Decimal(row["quantity"])
                got_net, got_tax = Decimal(row["net"]), Decimal(row["tax"])
                for got, whole in ((got_net, net), (got_tax, tax)):
                    exact = whole * units / qty
                    if got != got.quantize(CENT) or abs(got - exact) >= CENT:
                        off.add(credit["id"])
                acc = row_sums[(o.key, sku)]
                acc[0] += units
                acc[1] += got_net
                acc[2] += got_tax
                acc[3].append(credit["id"])
        for (key, sku), (units, net_sum, tax_sum, ids_) in row_sums.items():
            _, qty, net, tax = next(r for r in plan.orders[key].rows if r[0] == sku)
            if units == qty and (net_sum != net or tax_sum != tax):
                off.update(ids_)

        kinds = Counter(
            v if v in ("processed", "flagged", "lost") else "stuck" for v in final.values()
        )
        expected = Counter(r.expect for r in plan.returns)
        wrong_end = [
            r
            for r in plan.returns
            if final.get(r.return_id) in ("processed", "flagged") and final[r.return_id] != r.expect
        ]
        # A return that ended other than it should (received in full but flagged, or short but
        # processed) is stuck for the merchant: staff must sort it out.
        lost_or_stuck = kinds["lost"] + kinds["stuck"] + len(wrong_end)
        runs = Counter(
            SyncRun.objects.filter(connection=connection).values_list("status", flat=True)
        )
        events = Counter(
            WebhookEvent.objects.filter(connection=connection).values_list("status", flat=True)
        )
        statuses = {k: v for k, v in stats_storm.items() if k.startswith(("status:", "fault:"))}

        print()
        print(
            f"chaos run: {len(plan.returns)} returns, seed {args.seed}, "
            f"{'no instance id (private app)' if not args.instance_id else 'instance id sent'}"
        )
        print(
            f"  wall time {total_seconds:.1f} s (setup {setup_seconds:.1f}, arrivals "
            f"{arrivals_seconds:.1f}, storm {storm_seconds:.1f} incl. {storm_tail:.1f} after "
            f"arrivals, settle without faults {settle_seconds:.1f}, wakeup {wakeup_seconds:.1f})"
        )
        print(
            f"  Brightpearl during the storm: {stats_storm.get('requests', 0)} requests; "
            f"{dict(sorted(statuses.items()))}"
        )
        print(f"  kills: {kills_done}")
        wakeup_done = sum(final.get(r.return_id) in ("processed", "flagged") for r in wakeup)
        print(
            f"  wakeup: {wakeup_done}/{len(wakeup)} returns that arrived during a sync (with a "
            f"second sync requested meanwhile, then no schedule) reached their end in "
            f"{wakeup_seconds:.1f} s; {wakeup_note}"
        )
        print(f"  sync triggers {dict(triggers)}; runs {dict(runs)}")
        print(f"  Loop webhook deliveries {dict(deliverer.sent)}; events {dict(events)}")
        print(
            f"  warehouse: {dict(Counter(warehouse_done.values()))}; errors "
            f"{dict(warehouse_errors.most_common(3))}"
        )
        print(
            f"  outcomes: {dict(kinds)} (planned {dict(expected)}); "
            f"other end than planned (counted as stuck): {len(wrong_end)}"
        )
        for ret in wrong_end[:5]:
            rma = Rma.objects.filter(connection=connection, external_id=str(ret.return_id)).first()
            print(
                f"    return {ret.return_id} planned {ret.expect}: {final[ret.return_id]} "
                f"({rma.flag_reason if rma else ''})"
            )
        for rid, why in [(k, v) for k, v in final.items() if v.startswith(("stuck", "lost"))][:10]:
            print(f"    return {rid}: {why}")
        for rid, credits in [(k, v) for k, v in credits_by_return.items() if len(v) > 1][:5]:
            print(f"    return {rid}: credits {[c['id'] for c in credits]}")
        for thread in threads:
            for error, n in thread.errors.most_common(2):
                print(f"    {thread.action.__name__} error ×{n}: {error}")
        print(f"duplicate credits: {duplicate_credits}")
        print(f"duplicate payments: {duplicate_payments}")
        print(f"lost or stuck returns: {lost_or_stuck}")
        print(f"credits off by a cent: {len(off)}")
        ok = True
        failed = duplicate_credits or duplicate_payments or lost_or_stuck or off
        return 1 if failed else 0
    finally:
        for thread in threads:
            thread.stopped.set()
        if deliverer is not None:
            deliverer.stop()
        for proc in procs.values():
            proc.stop()
        loop.stop()
        bp_server.stop()
        db_connection_close()
        if ok and not args.keep_logs:
            import shutil

            shutil.rmtree(logs, ignore_errors=True)
        else:
            print(f"process logs kept in {logs}", file=sys.stderr)


def db_connection_close() -> None:
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # django never set up
        pass


if __name__ == "__main__":
    sys.exit(main())
