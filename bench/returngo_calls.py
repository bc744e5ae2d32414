"""ReturnGO calls per return over its whole life (2,000 calls a day per key by default).

Seeds N sales orders in the Brightpearl sandbox and N approved RMAs in the ReturnGO sandbox,
then runs the life of every return through syncs: credit → received in Brightpearl → Done on
ReturnGO → ReturnGO refunds (a transaction) → payment, followed by quiet polls inside the
listing's 5-minute overlap. Prints ReturnGO calls by endpoint and per return, last the calls
per return against the floor (3: the detail read when the return arrives — the listing is only
a summary — and the two writes, shipment Received and Done; the refunds of Done returns come in
batched `GET /transactions` calls). Loopback only; bounded by N.

    python bench/returngo_calls.py [N] [QUIET_POLLS]   (default 50 3; SQLite in a temp dir
                                                        unless DATABASE_URL is set)
"""

import re
import sys
from collections import Counter

from common import brightpearl_with_orders, in_process_django

in_process_django()

from django.core.management import call_command  # noqa: E402

from connector.models import Connection, SalesCredit, SyncRun  # noqa: E402
from connector.services.sync import run_sync  # noqa: E402
from returns.platforms.returngo.sandbox import ReturnGOSandbox  # noqa: E402


def main(n: int, quiet_polls: int) -> None:
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
    Connection.objects.filter(name="rgo").delete()
    connection = Connection.objects.create(
        name="rgo",
        brightpearl_account="rgo",
        brightpearl_app_ref="rgo_app",
        brightpearl_account_token="t",
        platform="returngo",
        platform_api_key=rg.api_key,
        platform_shop_name=rg.shop_name,
        platform_api_url=rg.url,
        refund_method_code="1220",
    )

    def sync() -> None:
        connection.refresh_from_db()
        run_sync(connection, trigger=SyncRun.Trigger.COMMAND)

    sync()  # credits
    for binding in SalesCredit.objects.filter(connection=connection):
        control.receive(binding.credit_id)
    sync()  # received → Done on ReturnGO
    for number in numbers:
        rg.add_transaction(number, "60.00")
    sync()  # refunds → payments
    for _ in range(quiet_polls):
        sync()
    payments = len(control.state().get("customerPayments", []))
    rg.stop()
    bp.stop()

    calls = Counter(f"{m} {re.sub(r'[0-9]+', '{id}', p)}" for m, p in rg.requests_seen)
    print(f"\nReturnGO calls for {n} returns over their life ({quiet_polls} quiet polls after):")
    for name, count in calls.most_common():
        print(f"  {count:5d}  {name}  ({count / n:.2f} per return)")
    reads = calls["GET /rma/{id}"]
    per_return = sum(calls.values()) / n
    print(f"payments recorded: {payments} of {n}")
    print(f"detail reads of a return: {reads / n:.2f} (floor 1: the listing is only a summary)")
    print(f"returns a day within 2,000 calls at this rate: {2000 / per_return:.0f}")
    print(
        f"ReturnGO calls per return: {per_return:.2f} in all (floor 3.00: one detail read, "
        "shipment Received, status Done; plus one list call per poll and one transactions "
        "call per 100 finished returns)"
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(args[0] if args else 50, args[1] if len(args) > 1 else 3)
