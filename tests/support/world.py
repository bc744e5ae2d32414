"""The small world sync tests run in: a Brightpearl sandbox account with a customer, products
and sales orders, a Loop sandbox with returns for those orders, and a connection joining them —
all over real HTTP on loopback. The fixtures `world` and `rg_world` (tests/connector/conftest.py)
build one; tests that need a second world call `make_world` themselves."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field

from connector.models import Connection, SyncRun
from connector.services.sync import SyncResult, preview_sync, run_sync
from connector.tasks import after_sync
from returns.platforms.loop.sandbox import LoopSandbox
from tests.support.brightpearl_sandbox import make_sandbox_account

_orders = itertools.count(1001)


@dataclass
class Sale:
    order_id: int
    order_name: str
    shop_order_id: str
    skus: list[str]
    row_ids: list[int]


@dataclass
class World:
    bp: object  # tests.support.brightpearl_sandbox.SandboxAccount
    loop: LoopSandbox
    connection: Connection
    contact_id: int = 0
    products: dict[str, int] = field(default_factory=dict)

    def product(self, sku: str, price: str = "10.00") -> int:
        if sku not in self.products:
            created = self.bp.control.seed(products=[{"sku": sku, "name": sku, "price": price}])
            self.products[sku] = created["products"][0]
        return self.products[sku]

    def sale(self, rows: list[tuple[str, int, str, str]], **order) -> Sale:
        """rows: (sku, quantity, net, tax) — a shipped sales order in Brightpearl."""
        number = next(_orders)
        name, shop_id = f"#{number}", str(7_000_000_000 + number + secrets.randbelow(10**6))
        for sku, *_ in rows:
            self.product(sku)
        order_id = self.bp.control.seed(
            orders=[
                {
                    "contactId": self.contact_id,
                    "reference": name,
                    "externalRef": shop_id,
                    "warehouseId": 2,
                    "channelId": 1,
                    "rows": [
                        {
                            "sku": s,
                            "quantity": q,
                            "net": net,
                            "tax": tax,
                            "taxCode": "T20",
                            "nominalCode": "4000",
                        }
                        for s, q, net, tax in rows
                    ],
                    **order,
                }
            ]
        )["orders"][0]
        found = self.bp.get(f"/order-service/order/{order_id}").json()["response"][0]
        return Sale(
            order_id, name, shop_id, [r[0] for r in rows], [int(r) for r in found["orderRows"]]
        )

    def loop_return(self, sale: Sale, lines: list[dict], **extra) -> dict:
        return self.loop.add_return(
            lines=lines,
            order_name=sale.order_name,
            order_id=sale.shop_order_id,
            currency="GBP",
            fire=False,
            **extra,
        )

    def sync(self, dry_run: bool = False, **kwargs) -> SyncRun:
        self.connection.refresh_from_db()
        if dry_run:
            return preview_sync(self.connection)
        result = self.sync_result(**kwargs)
        after_sync(result)  # as the command and the task do: queue what it asked for next
        return result.run

    def sync_result(self, **kwargs) -> SyncResult:
        self.connection.refresh_from_db()
        return run_sync(self.connection, trigger=SyncRun.Trigger.COMMAND, **kwargs)

    def state(self) -> dict:
        return self.bp.control.state()

    def credits(self) -> list[dict]:
        return [o for o in self.state()["orders"] if o["orderTypeCode"] == "SC"]

    def payments(self) -> list[dict]:
        return self.state().get("customerPayments", [])


def make_world(sandbox, loop_server, settings, customer: str, **connection_fields) -> World:
    """A fresh Brightpearl sandbox account with one customer and a connection to it."""
    settings.BRIGHTPEARL_API_URL = sandbox.api_url_template
    account = make_sandbox_account(sandbox)
    first, last = customer.split()
    contact = account.control.seed(
        contacts=[{"firstName": first, "lastName": last, "email": f"{first.lower()}@example.com"}]
    )["contacts"][0]
    connection = Connection.objects.create(
        brightpearl_account=account.code,
        brightpearl_app_ref=account.app_ref,
        brightpearl_account_token=account.account_token,
        **{
            k: v.format(code=account.code) if k == "name" else v
            for k, v in connection_fields.items()
        },
    )
    return World(bp=account, loop=loop_server, connection=connection, contact_id=contact)


def make_intake_world(sandbox, loop_server, settings, customer: str) -> tuple[World, str]:
    """A world whose connection takes returns through the generic intake API; returns it and
    the connection's intake token."""
    from connector.intake_api.authentication import issue_intake_token

    world = make_world(
        sandbox,
        loop_server,
        settings,
        customer,
        name="Intake shop {code}",
        platform="generic",
        platform_api_key="",
        refund_method_code="1200",
    )
    return world, issue_intake_token(world.connection)


def intake_body(world: World, sale: Sale, external_id: str) -> dict:
    """An approved return of every row of `sale`, as a returns portal posts it."""
    return {
        "external_id": external_id,
        "status": "approved",
        "order_id": sale.shop_order_id,
        "order_name": sale.order_name,
        "currency": "GBP",
        "lines": [
            {"line_id": f"{external_id}-{n}", "sku": sku, "quantity": 1, "unit_price": "10.00"}
            for n, sku in enumerate(sale.skus)
        ],
    }


def approved_returngo_rma(world: World, sku: str) -> str:
    """A new sale of one `sku` (50.00 + 10.00 tax) and an Approved ReturnGO RMA for it, not
    announced by webhook (a poll finds it): the RMA's ID."""
    sale = world.sale([(sku, 1, "50.00", "10.00")])
    record = world.returngo.add_rma(
        items=[{"sku": sku, "price": "50.00", "tax": "10.00"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        status="Approved",
        fire=False,
    )
    return record["rmaSummary"]["rmaId"]
