"""Does a quiet poll cost the same after a year of returns as on day one?

For each history size H it stores H finished returns (credited, received, processed, refunded,
all in the database as a sync would have left them), plus 20 recent returns the platform still
lists unchanged, then — as if an hour had passed since anything was written — measures one sync
with nothing new to do: wall time, SQL queries, rows written and Brightpearl requests, and the
time of the refund step's candidates query alone (median of 5; it used to grow with the refunds
table). Target: flat in H. The figure printed last is the ratio of the largest history's
queries to the smallest's (floor: 1.0).

    python bench/quiet_poll.py [H ...]        (default 100 1000 10000; SQLite in a temp dir
                                               unless DATABASE_URL is set; loopback only)
"""

import sys
import time

from common import brightpearl_with_orders, in_process_django, loop_connection

in_process_django()

from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from connector.models import (  # noqa: E402
    Connection,
    SyncRun,
)
from connector.services.refunds import refund_candidates  # noqa: E402
from connector.services.sync import run_sync  # noqa: E402
from returns.platforms.loop.sandbox import LoopSandbox  # noqa: E402
from tests.support.history import as_if_an_hour_passed, seed_history  # noqa: E402

RECENT = 20


def candidates_time(connection) -> float:
    """Seconds the refund step takes to find what to record (median of 5 calls)."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        refund_candidates(connection)
        times.append(time.perf_counter() - started)
    return sorted(times)[2]


def main(sizes: list[int]) -> None:
    call_command("migrate", verbosity=0)
    bp, control = brightpearl_with_orders("quiet", RECENT, net="10", tax="2")
    loop = LoopSandbox(port=0).start()
    for i in range(RECENT):
        loop.add_return(
            order_name=f"#{i}",
            order_id=f"shop-{i}",
            currency="GBP",
            fire=False,
            lines=[{"sku": "SKU-A"}],
        )
    Connection.objects.filter(name="quiet").delete()
    connection = loop_connection("quiet", "quiet", "t", loop)
    run_sync(connection, trigger=SyncRun.Trigger.COMMAND)  # the recent returns are credited
    seeded, results = 0, []
    print(
        f"{'history':>8} {'seconds':>8} {'queries':>8} {'writes':>7} {'BP requests':>12} "
        f"{'refund candidates ms':>21}"
    )
    for size in sizes:
        seed_history(connection, size - seeded, seeded)
        seeded = size
        run_sync(connection, trigger=SyncRun.Trigger.COMMAND)  # settle after seeding
        as_if_an_hour_passed(connection)  # no write in the duplicate check's look-back
        if db.vendor == "postgresql":
            # As autovacuum would after a bulk load: fresh statistics, and the dead rows of
            # the back-dating UPDATE above (every credit and payment at once: a bench device,
            # history is written over months) out of the (connection, updated_at) indexes.
            with db.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        connection.refresh_from_db()
        control.clear_requests()
        with CaptureQueriesContext(db) as queries:
            started = time.perf_counter()
            run = run_sync(connection, trigger=SyncRun.Trigger.COMMAND).run
            elapsed = time.perf_counter() - started
        writes = sum(
            1
            for q in queries
            if q["sql"].lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")
        )
        candidates_ms = candidates_time(connection) * 1000
        results.append((size, elapsed, len(queries), writes, run.brightpearl_requests))
        print(
            f"{size:>8} {elapsed:>8.3f} {len(queries):>8} {writes:>7} "
            f"{run.brightpearl_requests:>12} {candidates_ms:>21.2f}"
        )
    slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]
    for q in slowest:
        print(f"  slowest at {sizes[-1]}: {float(q['time']):.3f} s  {q['sql'][:160]}")
    bp.stop()
    loop.stop()
    first, last = results[0], results[-1]
    print(
        f"quiet poll queries at {last[0]} vs {first[0]} past returns: "
        f"{last[2] / first[2]:.2f}x (floor 1.00x); Brightpearl requests {last[4]} (floor ≤ 1)"
    )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 10000])
