"""Webhook latency: from Brightpearl's webhook POST to the RMA line showing the received quantity.

    python bench/webhook_latency.py [--deliveries 40] [--timeout 240]

Starts, all on loopback: the Brightpearl and Loop sandboxes (threads in this process), a
connector web process (`manage.py runserver`) and a real Celery worker (prefork, 2 children) on
Redis, with PostgreSQL as the database (a database of its own, recreated each run). It creates N
credited returns, registers the connector's Brightpearl subscriptions against the sandbox with
PUBLIC_BASE_URL = the web process, then receives each credit in the sandbox one at a time; the
sandbox fires `goods-in-note.created` at the web process over real HTTP.

Measured per delivery: start of the sandbox's POST (its delivery log: finish time − duration)
→ the moment this process sees the line's `quantity_received` in the database (polled every
2 ms). Brightpearl's own delay between the change and its POST is excluded by construction.
Prints p50 / p95 / max and exits; bounded by --timeout and by a per-delivery limit.

Needs PostgreSQL and Redis: --database-url (default postgres://postgres@127.0.0.1:5432/
bench_webhook_latency) and --redis-url (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Each webhook costs 3 Brightpearl requests: stay inside one account's 200 a minute.
MAX_DELIVERIES = 60
PER_DELIVERY_LIMIT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loopback(url: str) -> None:
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing a non-loopback service: {url}")


def recreate_database(database_url: str) -> None:
    import psycopg

    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"unexpected database name {name!r}")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


class Children:
    """The web and worker processes; always stopped on exit."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str], env: dict) -> None:
        out = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited:\n{self.log(name)[-3000:]}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(predicate, timeout: float, what: str, children: Children, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        children.check_alive()
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--api-latency",
        type=float,
        default=0.0,
        help="seconds the sandbox waits before answering each API call made while processing "
        "(models Brightpearl's response time; default 0)",
    )
    parser.add_argument("--timeout", type=float, default=240.0, help="whole run, seconds")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_webhook_latency"
        ),
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    total = args.warmup + args.deliveries
    if not 1 <= args.deliveries or total > MAX_DELIVERIES:
        raise SystemExit(f"--deliveries must be between 1 and {MAX_DELIVERIES - args.warmup}")
    loopback(args.database_url)
    loopback(args.redis_url)
    started = time.monotonic()

    def left() -> float:
        remaining = args.timeout - (time.monotonic() - started)
        if remaining <= 0:
            raise SystemExit(f"stopped: the run took longer than --timeout {args.timeout:.0f} s")
        return remaining

    port = free_port()
    queue = f"bench-{secrets.token_hex(5)}"
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SECRET_KEY": secrets.token_urlsafe(48),  # same in every process: shared encryption
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # Brightpearl's sandbox delivers to loopback here; production's check refuses that.
        "SILENCED_SYSTEM_CHECKS": "connector.E101",
        "PYTHONUNBUFFERED": "1",
    }
    recreate_database(args.database_url)

    from brightpearl.sandbox import SandboxControl, SandboxServer

    bp_server = SandboxServer(host="127.0.0.1", port=0).start()
    env["BRIGHTPEARL_API_URL"] = bp_server.api_url_template
    env["PLATFORM_URL_ALLOWLIST"] = "http://127.0.0.1:*"  # the Loop sandbox
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    from connector.models import Connection, SyncRun, WebhookEvent
    from connector.services import subscriptions
    from connector.services.brightpearl import _throttle_store
    from connector.services.sync import run_sync
    from returns.models import Rma, RmaLine
    from returns.platforms.loop.sandbox import LoopSandbox

    loop = LoopSandbox(port=0, rate_limit=[(100_000, 60.0)]).start()
    logs = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    finished = False
    children = Children(logs)
    try:
        call_command("migrate", verbosity=0)
        print(f"setting up {total} credited returns …", flush=True)
        code = "bench" + secrets.token_hex(3)
        token = secrets.token_urlsafe(16)
        bp = SandboxControl(bp_server.url)
        bp.create_account(code, app_ref=f"{code}_app", account_token=token)
        bp = bp.for_account(code)
        contact = bp.seed(contacts=[{"firstName": "Ada", "lastName": "Bench", "email": "a@b.c"}])[
            "contacts"
        ][0]
        bp.seed(products=[{"sku": "BENCH-SKU", "name": "Bench item", "price": "10.00"}])
        orders = bp.seed(
            orders=[
                {
                    "contactId": contact,
                    "reference": f"#B{n}",
                    "externalRef": f"shop-{n}",
                    "warehouseId": 2,
                    "channelId": 1,
                    "rows": [
                        {
                            "sku": "BENCH-SKU",
                            "quantity": 2,
                            "net": "20.00",
                            "tax": "4.00",
                            "taxCode": "T20",
                            "nominalCode": "4000",
                        }
                    ],
                }
                for n in range(total)
            ]
        )["orders"]
        for n in range(total):
            loop.add_return(
                lines=[{"sku": "BENCH-SKU", "quantity": 2}],
                order_name=f"#B{n}",
                order_id=f"shop-{n}",
                currency="GBP",
                fire=False,
            )
        connection = Connection.objects.create(
            name=f"Bench {code}",
            brightpearl_account=code,
            brightpearl_app_ref=f"{code}_app",
            brightpearl_account_token=token,
            platform="loop",
            platform_api_key=loop.api_key,
            platform_api_url=loop.api_url,
            refund_method_code="1200",
        )
        run = run_sync(connection, trigger=SyncRun.Trigger.COMMAND).run
        rmas = list(
            Rma.objects.filter(connection=connection, sales_credit__credit_id__isnull=False)
            .select_related("sales_credit")
            .order_by("pk")
        )
        if len(rmas) != len(orders):
            raise SystemExit(f"only {len(rmas)} of {len(orders)} credits were made: {run.message}")

        python = sys.executable
        children.start(
            "web",
            [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            os.environ.copy(),
        )
        children.start(
            "worker",
            [python, "-m", "celery", "-A", "config", "worker", "--concurrency=2"]
            + ["--pool=prefork", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
            os.environ.copy(),
        )

        def web_up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(web_up, min(30, left()), "the web process", children)
        wait_for(lambda: "ready." in children.log("worker"), min(30, left()), "worker", children)
        result = subscriptions.register(connection)
        # Brightpearl allows 200 requests per minute per account (the sandbox enforces it, and
        # the client keeps a shared estimate in Redis). Setting up spent ~2 per credit; start
        # the measured part with a full budget, as a live account's webhooks would find it.
        bp.set_throttle(200, 60)  # resets the sandbox's current period
        store = _throttle_store()
        for key in store._redis.scan_iter(f"{store.prefix}*:{code}:*"):
            store._redis.delete(key)
        if args.api_latency:
            bp.set_latency(min(args.api_latency, 2.0))
        print(f"subscriptions: {result.summary()}; web {env['PUBLIC_BASE_URL']}", flush=True)

        latencies, stored = [], []
        for index, rma in enumerate(rmas):
            line_ids = list(RmaLine.objects.filter(rma=rma).values_list("pk", flat=True))
            note = bp.receive(rma.sales_credit.credit_id)["goodsNoteId"]

            def received(line_ids=line_ids):
                rows = RmaLine.objects.filter(pk__in=line_ids).values_list(
                    "quantity_received", "quantity"
                )
                return all(got == want for got, want in rows) and time.time()

            done_at = wait_for(
                received, min(PER_DELIVERY_LIMIT, left()), f"delivery {index}", children, 0.002
            )
            delivery = wait_for(
                lambda note=note: next(
                    (
                        d
                        for d in bp.webhook_deliveries()
                        if d["event"] == "goods-in-note.created"
                        and f'"id":"{note}"' in (d["body"] or "")
                        and d["outcome"] == "delivered"
                    ),
                    None,
                ),
                min(5, left()),
                "the delivery record",
                children,
            )
            posted_at = datetime.fromisoformat(delivery["at"]).timestamp() - (
                delivery["durationMs"] / 1000.0
            )
            event = WebhookEvent.objects.filter(
                connection=connection, event="goods-in-note.created", resource_ids=str(note)
            ).first()
            if index < args.warmup:
                continue
            latencies.append(done_at - posted_at)
            if event is not None:
                stored.append(event.received_at.timestamp() - posted_at)

        wait_for(
            lambda: (
                not WebhookEvent.objects.filter(
                    connection=connection,
                    status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.PROCESSING],
                ).exists()
            ),
            min(30, left()),
            "the last events to finish",
            children,
        )
        runs = list(SyncRun.objects.filter(connection=connection, trigger="webhook"))
        statuses = sorted(WebhookEvent.objects.values_list("status", flat=True))
        ms = [v * 1000 for v in latencies]
        print()
        print(
            f"webhook POST → RMA line shows the received quantity, {len(ms)} deliveries"
            + (f", Brightpearl API latency {args.api_latency:.3f} s" if args.api_latency else "")
        )
        print(f"  p50 {percentile(ms, 50):7.1f} ms")
        print(f"  p95 {percentile(ms, 95):7.1f} ms   (target < 1000 ms)")
        print(f"  max {max(ms):7.1f} ms")
        print(f"  mean {statistics.fmean(ms):6.1f} ms, min {min(ms):.1f} ms")
        if stored:
            print(f"  of which POST → event stored: p50 {percentile(stored, 50) * 1000:.1f} ms")
        print(
            f"  webhook sync runs: {len(runs)}, Brightpearl requests per run: "
            f"{statistics.fmean(r.brightpearl_requests for r in runs):.1f}; "
            f"event statuses: {dict((s, statuses.count(s)) for s in set(statuses))}"
        )
        print(f"  wall time {time.monotonic() - started:.1f} s")
        finished = True
        return 0 if percentile(ms, 95) < 1000 else 1
    finally:
        children.stop()
        if finished:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            print(f"web and worker logs kept in {logs}", file=sys.stderr)
        loop.stop()
        bp_server.stop()


if __name__ == "__main__":
    sys.exit(main())
