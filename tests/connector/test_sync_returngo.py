"""The same engine with ReturnGO: credit on approval, receipt → status updates, refunds from
transactions — against the ReturnGO and Brightpearl sandboxes over real HTTP."""

from decimal import Decimal

import pytest

from connector.models import BindingState, Connection, SalesCredit
from returns.models import Rma
from returns.platforms.returngo.sandbox import ReturnGOSandbox
from tests.brightpearl.conftest import make_sandbox_account

from .conftest import World

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def returngo_server():
    server = ReturnGOSandbox(port=0).start()
    yield server
    server.stop()


@pytest.fixture
def rg_world(db, sandbox, returngo_server, loop_server, settings):
    settings.BRIGHTPEARL_API_URL = sandbox.api_url_template
    returngo_server.reset()
    account = make_sandbox_account(sandbox)
    contact = account.control.seed(
        contacts=[{"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com"}]
    )["contacts"][0]
    connection = Connection.objects.create(
        name=f"ReturnGO shop {account.code}",
        brightpearl_account=account.code,
        brightpearl_app_ref=account.app_ref,
        brightpearl_account_token=account.account_token,
        platform="returngo",
        platform_api_key=returngo_server.api_key,
        platform_shop_name=returngo_server.shop_name,
        platform_api_url=returngo_server.url,
        refund_method_code="1220",
        customer_ref_prefix="RGO-",
    )
    world = World(bp=account, loop=loop_server, connection=connection, contact_id=contact)
    world.returngo = returngo_server
    return world


def test_returngo_lifecycle(rg_world):
    world, rg = rg_world, rg_world.returngo
    sku = "DRESS-" + world.bp.code
    sale = world.sale([(sku, 2, "100.00", "20.00")])
    rma_record = rg.add_rma(
        items=[{"sku": sku, "quantity": 2, "price": "60.00", "tax": "10.00"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        status="Approved",
        fire=False,
    )
    number = rma_record["rmaSummary"]["rmaId"]

    world.sync()
    [credit] = world.credits()
    assert credit["parentOrderId"] == sale.order_id
    rma = Rma.objects.get(external_id=str(number))
    assert rma.rma_number == f"RMA{number}"  # as ReturnGO shows it to the merchant
    assert credit["reference"] == f"RGO-RMA{number}"
    assert rma.lines.get().quantity == 2  # two per-unit items aggregated

    world.bp.control.receive(credit["id"])
    world.sync()
    rma.refresh_from_db()
    assert rma.status == "processed"
    assert rg.get_rma(number)["rmaSummary"]["status"] == "Done"

    rg.add_transaction(number, "140.00", id="tx-9")
    world.sync()
    payments = [p for p in world.payments() if p["orderId"] == credit["id"]]
    assert len(payments) == 1
    assert payments[0]["paymentMethodCode"] == "CARD"  # bank 1220 in GBP
    assert Decimal(str(payments[0]["amountPaid"])) == Decimal("140.00")
    assert SalesCredit.objects.get().state == BindingState.CREATED


def test_returngo_pending_rma_gets_no_credit_until_approved(rg_world):
    world, rg = rg_world, rg_world.returngo
    sku = "SKIRT-" + world.bp.code
    sale = world.sale([(sku, 1, "40.00", "8.00")])
    record = rg.add_rma(
        items=[{"sku": sku}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        status="Pending",
        fire=False,
    )
    world.sync()
    assert world.credits() == []
    rg.set_status(record["rmaSummary"]["rmaId"], "Approved", fire=False)
    world.sync()
    assert len(world.credits()) == 1
