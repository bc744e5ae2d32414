"""How many Brightpearl requests a sync spends per return, and where.

Seeds N sales orders and N Loop returns in the sandboxes, then runs:
  1. the credit run (N credits), 2. a receipt run after the warehouse received everything,
  3. an idle run (nothing to do).
Prints requests per run and per endpoint, and wall time. Loopback only; bounded by N.

    python bench/sync_api_economy.py [N]      (default 50; SQLite in a temp dir unless
                                               DATABASE_URL is set)
"""

import sys
import time
from collections import Counter

from common import in_process_django, loop_connection, new_account, sales_order

in_process_django()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from brightpearl.sandbox import SandboxServer  # noqa: E402
from connector.models import Connection, SalesCredit, SyncRun  # noqa: E402
from connector.services.sync import run_sync  # noqa: E402
from returns.platforms.loop.sandbox import LoopSandbox  # noqa: E402


def endpoint(path: str) -> str:
    path = path.split("?")[0].split("/public-api/bench", 1)[-1]
    return "/".join(p if not p[0].isdigit() else "{ids}" for p in path.split("/") if p)


def main(n: int) -> None:
    call_command("migrate", verbosity=0)
    bp = SandboxServer(port=0).start()
    loop = LoopSandbox(port=0).start()
    settings.BRIGHTPEARL_API_URL = bp.api_url_template
    control, contact = new_account(
        bp.url,
        "bench",
        "tok",
        contact={"firstName": "B", "lastName": "Ench", "email": "b@example.com"},
        products=[
            {"sku": "SKU-A", "name": "A", "price": "10.00"},
            {"sku": "SKU-B", "name": "B", "price": "5.00"},
        ],
    )
    control.set_throttle(budget=100000, window_seconds=60)
    rows = [("SKU-A", 2, "20", "4"), ("SKU-B", 1, "5", "1")]
    orders = control.seed(
        orders=[sales_order(contact, f"#{i}", f"shop-{i}", rows) for i in range(n)]
    )["orders"]
    for i in range(n):
        loop.add_return(
            order_name=f"#{i}",
            order_id=f"shop-{i}",
            currency="GBP",
            fire=False,
            lines=[{"sku": "SKU-A", "quantity": 2}, {"sku": "SKU-B"}],
        )
    Connection.objects.filter(name="bench").delete()
    connection = loop_connection("bench", "bench", "tok", loop)

    def measured(label: str) -> SyncRun:
        control.clear_requests()
        started = time.perf_counter()
        run = run_sync(connection, trigger=SyncRun.Trigger.COMMAND).run
        elapsed = time.perf_counter() - started
        by_endpoint = Counter(f"{r['method']} {endpoint(r['path'])}" for r in control.requests())
        print(
            f"\n{label}: {run.status}, {run.brightpearl_requests} Brightpearl requests "
            f"({run.brightpearl_requests / n:.2f} per return), {elapsed:.2f} s"
        )
        for name, count in by_endpoint.most_common():
            print(f"  {count:5d}  {name}")
        return run

    credit = measured(f"1. credits for {n} returns")
    assert len(orders) == n
    for binding in SalesCredit.objects.filter(connection=connection):
        control.receive(binding.credit_id)
    receipt = measured(f"2. receipts for {n} credits (all received → processed on Loop)")
    refund = measured(f"3. refunds: Loop refunded {n} processed returns → {n} payments")
    idle = measured("4. idle run (nothing changed)")
    bp.stop()
    loop.stop()
    print(
        f"\nBrightpearl requests per return at N = {n}: credit "
        f"{credit.brightpearl_requests / n:.2f} (floor 1.00, target ≤ 1.10), receipt "
        f"{receipt.brightpearl_requests / n:.2f} (floor 0.00), refund "
        f"{refund.brightpearl_requests / n:.2f} (floor 1.00, target ≤ 1.10); idle run "
        f"{idle.brightpearl_requests} (target ≤ 1)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
