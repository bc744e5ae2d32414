"""The Brightpearl webhook endpoint under gunicorn + PostgreSQL, beside a view that does one INSERT.

Starts gunicorn (the connector's WSGI app, `--workers 2`, sync workers as in docker-compose.yml)
with `bench/webhook_settings.py` — the connector's settings and URLs plus a baseline view that
stores each delivery in one INSERT into the same table (nothing looked up, parsed or queued).
Then, for each endpoint, on a connection of its own:

* steady: deliveries at a fixed rate (default 200/s) for `--seconds`, sent on schedule whatever
  the answers (open loop, so a slow server cannot slow the sender down and hide its latency);
* max: `--concurrency` senders back to back for `--seconds` (closed loop): the throughput.
The two endpoints take turns in `--rounds` slices of each phase, so the machine's other load
falls on both alike.

Each delivery is a distinct `goods-in-note.created` event (its own raisedOn, so none is a
duplicate). Per phase: answers per second, p50/p99 from the send to the answer, non-202
answers, and events lost = deliveries sent − rows stored for the connection. The real endpoint
also wakes its connection's drain as in production: a delivery that finds no drain pending
queues one on Redis (a queue of the benchmark's own that no worker reads; removed at the end).
No worker runs, so a drain would never start: the benchmark plays the workers by lowering every
wake-up marker each `--drain-every` seconds (0.1), as drains starting that often would, and
prints how many drain tasks the deliveries queued. Last line: throughput vs the baseline's
(target ≥ 0.9×), p99 at the steady rate (target < 50 ms), events lost (target 0); exit status
1 when events were lost.

    python bench/webhook_throughput.py [--rate 200] [--seconds 10] [--concurrency 8]
                                       [--conn-max-age 60] [--drain-every 0.1]

Needs PostgreSQL (database recreated: `bench_webhook_throughput` unless --database-url) and
Redis on loopback; refuses non-loopback URLs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import (
    Proc,
    free_port,
    listening,
    loopback,
    percentile,
    process_env,
    recreate_database,
    service_arguments,
    wait_for,
)

SETTINGS = "bench.webhook_settings"


def deliver(port: int, path: str, body: bytes) -> tuple[int, float]:
    """One POST on a fresh connection (gunicorn's sync workers close after each answer, as a
    sender's separate deliveries would): (status, seconds to the answer; status 0 = no answer)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        status = response.status
    except OSError:
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - started


class Target:
    """An endpoint on a connection of its own: what to POST, where, and the deliveries."""

    def __init__(self, label: str, connection, path: str):
        self.label, self.connection, self.path = label, connection, path
        self.counter = 0
        self.lock = threading.Lock()

    def body(self) -> bytes:
        with self.lock:
            self.counter += 1
            n = self.counter
        raised = f"2026-11-23T10:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}Z"
        return json.dumps(
            {
                "accountCode": self.connection.brightpearl_account,
                "resourceType": "goods-in-note",
                "id": str(n),
                "lifecycleEvent": "created",
                "fullEvent": "goods-in-note.created",
                "raisedOn": raised,
            }
        ).encode()


def steady(port: int, target: Target, rate: float, seconds: float) -> list[tuple[int, float]]:
    """Open loop: one delivery every 1/rate s, on schedule, however long the answers take."""
    count = int(rate * seconds)
    results: list[tuple[int, float]] = []
    with ThreadPoolExecutor(max_workers=64) as pool:
        futures = []
        start = time.perf_counter()
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(deliver, port, target.path, target.body()))
        results = [f.result() for f in futures]
    return results


def flat_out(port: int, target: Target, senders: int, seconds: float):
    """Closed loop: `senders` back-to-back senders for `seconds`; (results, elapsed)."""
    results: list[tuple[int, float]] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def sender() -> None:
        while time.perf_counter() < deadline:
            outcome = deliver(port, target.path, target.body())
            with lock:
                results.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def summarise(target: Target, phase: str, results, elapsed: float) -> dict:
    from connector.models import WebhookEvent

    stored = WebhookEvent.objects.filter(connection=target.connection).count()
    sent = target.counter
    latencies = [s for _, s in results]
    figures = {
        "endpoint": target.label,
        "phase": phase,
        "sent": len(results),
        "per_second": len(results) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "not_202": sum(1 for status, _ in results if status != 202),
        "lost": sent - stored,
    }
    print(
        f"{target.label:>12} {phase:>14} {figures['sent']:>6} {figures['per_second']:>8.1f} "
        f"{figures['p50_ms']:>8.1f} {figures['p99_ms']:>8.1f} {figures['not_202']:>7} "
        f"{figures['lost']:>5}",
        flush=True,
    )
    return figures


def targets():
    from connector.models import Connection

    made = {}
    for label in ("one INSERT", "brightpearl"):
        code = f"bench{secrets.token_hex(3)}"
        connection = Connection.objects.create(
            name=f"{label} {code}", brightpearl_account=code, platform="generic"
        )
        path = (
            f"/bench/one-insert/{connection.pk}/"
            if label == "one INSERT"
            else f"/webhooks/brightpearl/{connection.pk}/{connection.webhook_secret}/"
        )
        made[label] = Target(label, connection, path)
    return made


def measure(args, port: int, web: Proc) -> dict:
    """Both endpoints, steady then flat out, each phase on fresh connections. The endpoints
    take turns in `--rounds` slices of each phase, so a change in the machine's other load
    falls on both alike."""
    print(
        f"{'endpoint':>12} {'phase':>14} {'sent':>6} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'not 202':>7} {'lost':>5}",
        flush=True,
    )
    for label, target in targets().items():  # each worker's first requests: keys, imports
        warm, _ = flat_out(port, target, 2, 1.0)
        if not any(status == 202 for status, _ in warm):
            web.check()
            raise SystemExit(f"{label}: no delivery accepted\n{web.log()[-3000:]}")
    figures, piece = {}, args.seconds / args.rounds
    for phase in (f"steady {args.rate:g}/s", "max"):
        made = targets()
        results = {label: [] for label in made}
        elapsed = dict.fromkeys(made, 0.0)
        for _ in range(args.rounds):
            for label, target in made.items():
                if phase == "max":
                    done, took = flat_out(port, target, args.concurrency, piece)
                else:
                    started = time.perf_counter()
                    done = steady(port, target, args.rate, piece)
                    took = time.perf_counter() - started
                results[label] += done
                elapsed[label] += took
        for label, target in made.items():
            figures[(label, phase.split()[0])] = summarise(
                target, phase, results[label], elapsed[label]
            )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    service_arguments(parser, "bench_webhook_throughput")
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries a second, steady")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=8, help="senders at max")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--rounds", type=int, default=5, help="turns the endpoints take")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=0,
        help="seconds a worker keeps its database connection (settings default: 0)",
    )
    parser.add_argument(
        "--drain-every",
        type=float,
        default=0.1,
        help="seconds between the drains the benchmark plays (lowering the wake-up markers)",
    )
    args = parser.parse_args()
    loopback(args.database_url)
    loopback(args.redis_url)
    recreate_database(args.database_url)
    queue = f"bench-throughput-{secrets.token_hex(4)}"
    port = free_port()
    env = process_env(
        args.database_url,
        args.redis_url,
        queue,
        DJANGO_SETTINGS_MODULE=SETTINGS,
        BENCH_CONN_MAX_AGE=str(args.conn_max_age),
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    logs = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    cmd = [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
    cmd += [f"--workers={args.workers}", f"--bind=127.0.0.1:{port}", "--timeout=60"]
    web = Proc("gunicorn", cmd, os.environ.copy(), logs)
    drains = Drains(args.redis_url, queue, args.drain_every)
    try:
        wait_for(lambda: listening(port), 60, "gunicorn", watch=[web])
        drains.start()
        figures = measure(args, port, web)
    finally:
        drains.stop()
        web.stop()
        _drop_queues(args.redis_url, queue)
    return report(args, figures)


class Drains(threading.Thread):
    """Plays the workers: each `every` s, every connection's wake-up marker is lowered, as a
    drain starting would (connector/services/inbound_wakeup.py), so the next delivery queues
    the next drain. Counts the drain tasks queued (what the deliveries cost the broker)."""

    def __init__(self, redis_url: str, queue: str, every: float):
        import redis

        super().__init__(daemon=True)
        self.client, self.queue, self.every = redis.Redis.from_url(redis_url), queue, every
        self.done, self.queued = threading.Event(), 0

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.lower()

    def lower(self) -> None:
        for key in self.client.scan_iter(match="*inbound-drain:*", count=1000):
            self.client.delete(key)
        for name in self.client.scan_iter(match=f"{self.queue}*"):
            if self.client.type(name) == b"list":
                self.queued += self.client.llen(name)
                self.client.delete(name)

    def stop(self) -> None:
        self.done.set()
        if self.is_alive():
            self.join(timeout=10)
        self.lower()
        print(f"drain tasks queued by the deliveries: {self.queued}", flush=True)


def _drop_queues(redis_url: str, queue: str) -> None:
    """The processing tasks the real endpoint queued (no worker reads the bench's queues)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = [k for k in client.scan_iter(match=f"*{queue}*")]
    if keys:
        client.delete(*keys)


def report(args, figures: dict) -> int:
    real, base = figures[("brightpearl", "max")], figures[("one INSERT", "max")]
    at_rate = figures[("brightpearl", "steady")]
    lost = sum(f["lost"] for f in figures.values())
    ratio = real["per_second"] / base["per_second"]
    print(
        f"webhook endpoint at max: {real['per_second']:.1f}/s = {ratio:.2f}x the one-INSERT "
        f"view's {base['per_second']:.1f}/s (target >= 0.90x); p99 at {args.rate:g}/s: "
        f"{at_rate['p99_ms']:.1f} ms (target < 50 ms); events lost: {lost} (target 0)"
    )
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
