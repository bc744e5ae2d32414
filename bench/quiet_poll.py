"""Does a quiet poll cost the same after a year of returns as on day one?

For each history size H it stores H finished returns (credited, received, processed, refunded,
all in the database as a sync would have left them), plus 20 recent returns the platform still
lists unchanged, then measures one sync with nothing new to do: wall time, SQL queries, rows
written and Brightpearl requests. Target: flat in H. The figure printed last is the ratio of the
largest history's queries to the smallest's (floor: 1.0).

    python bench/quiet_poll.py [H ...]        (default 100 1000 10000; SQLite in a temp dir
                                               unless DATABASE_URL is set; loopback only)
"""

import sys
import time
from decimal import Decimal

from common import in_process_django, loop_connection, new_account, sales_order

in_process_django()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from brightpearl.sandbox import SandboxServer  # noqa: E402
from connector.models import (  # noqa: E402
    BindingState,
    Connection,
    RefundPayment,
    SalesCredit,
    SyncRun,
)
from connector.services.sync import run_sync  # noqa: E402
from returns.models import Refund, Rma, RmaLine  # noqa: E402
from returns.platforms.loop.sandbox import LoopSandbox  # noqa: E402

RECENT = 20


def seed_history(connection: Connection, size: int, offset: int) -> None:
    """`size` finished returns, written in bulk the way a sync would have left them."""
    now = timezone.now() - timezone.timedelta(days=30)
    rmas = Rma.objects.bulk_create(
        Rma(
            connection=connection,
            platform="loop",
            external_id=f"old-{offset + i}",
            rma_number=f"old-{offset + i}",
            order_name=f"#old-{offset + i}",
            currency="GBP",
            status="processed",
            furthest_status="processed",
            platform_status="closed",
            platform_updated_at=now,
        )
        for i in range(size)
    )
    RmaLine.objects.bulk_create(
        RmaLine(
            rma=rma,
            sku="SKU-A",
            quantity=1,
            unit_price=Decimal("10.00"),
            quantity_received=1,
            quantity_restocked=1,
        )
        for rma in rmas
    )
    credits = SalesCredit.objects.bulk_create(
        SalesCredit(
            connection=connection,
            account_key=connection.brightpearl_account_key,
            rma=rma,
            external_ref=f"rbc:{connection.pk}:loop:old-{offset + i}",
            parent_order_id=1_000_000 + offset + i,
            credit_id=2_000_000 + offset + i,
            state=BindingState.CREATED,
            processed_at=now,
            order_row_units={"1": "1"},
        )
        for i, rma in enumerate(rmas)
    )
    refunds = Refund.objects.bulk_create(
        Refund(rma=rma, external_id=f"r-{rma.external_id}", amount=Decimal("12.00"), status="")
        for rma in rmas
    )
    RefundPayment.objects.bulk_create(
        RefundPayment(
            connection=connection,
            account_key=connection.brightpearl_account_key,
            refund=refund,
            sales_credit=credit,
            transaction_ref=f"rbc-{connection.pk}-{refund.external_id}",
            payment_id=3_000_000 + i + offset,
            state=BindingState.CREATED,
        )
        for i, (refund, credit) in enumerate(zip(refunds, credits, strict=True))
    )


def main(sizes: list[int]) -> None:
    call_command("migrate", verbosity=0)
    bp = SandboxServer(port=0).start()
    loop = LoopSandbox(port=0).start()
    settings.BRIGHTPEARL_API_URL = bp.api_url_template
    control, contact = new_account(
        bp.url,
        "quiet",
        "t",
        contact={"firstName": "Q", "lastName": "P", "email": "q@x.com"},
        products=[{"sku": "SKU-A", "name": "A", "price": "10.00"}],
    )
    control.set_throttle(budget=100000, window_seconds=60)
    rows = [("SKU-A", 1, "10", "2")]
    control.seed(orders=[sales_order(contact, f"#{i}", f"shop-{i}", rows) for i in range(RECENT)])
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
    print(f"{'history':>8} {'seconds':>8} {'queries':>8} {'writes':>7} {'BP requests':>12}")
    for size in sizes:
        seed_history(connection, size - seeded, seeded)
        seeded = size
        if db.vendor == "postgresql":  # as autovacuum would after a bulk load
            with db.cursor() as cursor:
                cursor.execute("ANALYZE")
        run_sync(connection, trigger=SyncRun.Trigger.COMMAND)  # settle after seeding
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
        results.append((size, elapsed, len(queries), writes, run.brightpearl_requests))
        print(
            f"{size:>8} {elapsed:>8.3f} {len(queries):>8} {writes:>7} "
            f"{run.brightpearl_requests:>12}"
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
