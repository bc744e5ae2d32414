"""Refund outcomes and currencies, end to end against the Brightpearl, Loop and ReturnGO
sandboxes over real HTTP: what each outcome becomes in Brightpearl's books."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from connector.models import (
    BindingState,
    OutcomeMapping,
    RefundBankAccount,
    RefundPayment,
    SyncEvent,
    Treatment,
)
from returns.models import Rma

pytestmark = pytest.mark.django_db


def rma_for(world, external_id) -> Rma:
    return Rma.objects.get(connection=world.connection, external_id=str(external_id))


def credited_and_processed(world, sale, lines, currency="GBP", **extra):
    """A Loop return for `sale`, credited, received in Brightpearl and processed on Loop (which
    fulfils its outcomes); then the sync that takes the outcomes in."""
    loop_return = world.loop.add_return(
        lines=lines,
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency=currency,
        fire=False,
        **extra,
    )
    world.sync()
    rma = rma_for(world, loop_return["id"])
    world.bp.control.receive(rma.sales_credit.credit_id)
    world.sync()  # received → processed on Loop: refunds, gift cards, exchange orders issued
    world.sync()  # … which this sync takes in and records
    rma.refresh_from_db()
    return rma


def payments_on(world, credit_id) -> list[dict]:
    return [p for p in world.payments() if p["orderId"] == credit_id]


def notes_on(world, credit_id) -> list[str]:
    return [n["text"] for n in world.state()["orderNotes"] if n["orderId"] == credit_id]


def test_store_credit_posts_nothing_from_the_bank_and_is_noted_on_the_credit(world):
    sku = "COAT-" + world.bp.code
    sale = world.sale([(sku, 1, "50.00", "10.00")])
    rma = credited_and_processed(
        world, sale, [{"sku": sku, "price": "60.00", "outcome": "store_credit"}]
    )
    credit_id = rma.sales_credit.credit_id
    assert payments_on(world, credit_id) == []
    [note] = [n for n in notes_on(world, credit_id) if "Store credit" in n]
    assert "60.00 GBP" in note and "No payment recorded" in note and "GC-" in note
    payment = RefundPayment.objects.get(refund__rma=rma)
    assert payment.state == BindingState.CREATED and payment.treatment == Treatment.NOTE
    assert payment.payment_id is None and payment.note_id
    world.sync()
    assert len([n for n in notes_on(world, credit_id) if "Store credit" in n]) == 1  # once


def test_store_credit_mapped_to_a_liability_payment_method(world):
    OutcomeMapping.objects.create(
        connection=world.connection,
        outcome="store_credit",
        treatment=Treatment.PAYMENT_METHOD,
        payment_method_code="GIFTCARD",
    )
    sku = "SCARF-" + world.bp.code
    sale = world.sale([(sku, 1, "25.00", "5.00")])
    rma = credited_and_processed(
        world, sale, [{"sku": sku, "price": "30.00", "outcome": "store_credit"}]
    )
    [payment] = payments_on(world, rma.sales_credit.credit_id)
    assert payment["paymentMethodCode"] == "GIFTCARD"  # nominal 2110, a liability: not a bank
    assert Decimal(payment["amountPaid"]) == Decimal("30.00")


def test_a_bonus_is_capped_at_the_credit_total_and_noted(world):
    """Loop issues 22.00 of store credit (10 % bonus) for goods worth 20.00: 20.00 recorded,
    the 2.00 never paid, and said on the credit."""
    OutcomeMapping.objects.create(
        connection=world.connection,
        outcome="store_credit",
        treatment=Treatment.PAYMENT_METHOD,
        payment_method_code="GIFTCARD",
    )
    sku = "BELT-" + world.bp.code
    sale = world.sale([(sku, 1, "16.67", "3.33")])
    rma = credited_and_processed(
        world,
        sale,
        [{"sku": sku, "price": "20.00", "outcome": "store_credit"}],
        credit_bonus="0.10",
    )
    credit_id = rma.sales_credit.credit_id
    [payment] = payments_on(world, credit_id)
    assert Decimal(payment["amountPaid"]) == Decimal("20.00")
    assert any("2.00 GBP above the credit's total" in n for n in notes_on(world, credit_id))
    binding = RefundPayment.objects.get(refund__rma=rma)
    assert binding.amount == Decimal("20.00") and binding.bonus == Decimal("2.00")


def test_a_bonus_held_for_staff_records_nothing(world):
    OutcomeMapping.objects.create(connection=world.connection, outcome="bonus", treatment="hold")
    sku = "GLOVE-" + world.bp.code
    sale = world.sale([(sku, 1, "16.67", "3.33")])
    rma = credited_and_processed(
        world,
        sale,
        [{"sku": sku, "price": "20.00", "outcome": "store_credit"}],
        credit_bonus="0.10",
    )
    assert payments_on(world, rma.sales_credit.credit_id) == []
    binding = RefundPayment.objects.get(refund__rma=rma)
    assert binding.state == BindingState.FAILED and "held for staff" in binding.last_error
    assert SyncEvent.objects.filter(rma=rma, kind="refund", outcome="failed").count() == 1


def test_mixed_outcomes_on_one_return_split(world):
    """One return: a refund line (bank), a store-credit line (noted) and an exchange line (noted,
    naming the exchange order); the bank pays only the refunded line."""
    skus = [f"{p}-{world.bp.code}" for p in ("TEE", "CAP", "SOCK")]
    sale = world.sale([(s, 1, "10.00", "2.00") for s in skus])
    rma = credited_and_processed(
        world,
        sale,
        [
            {"sku": skus[0], "price": "12.00", "outcome": "refund"},
            {"sku": skus[1], "price": "12.00", "outcome": "store_credit"},
            {"sku": skus[2], "price": "12.00", "outcome": "exchange"},
        ],
    )
    credit_id = rma.sales_credit.credit_id
    [payment] = payments_on(world, credit_id)
    assert payment["paymentMethodCode"] == "BANK" and Decimal(payment["amountPaid"]) == 12
    notes = notes_on(world, credit_id)
    assert any("Store credit" in n and "12.00 GBP" in n for n in notes)
    [exchange] = [n for n in notes if n.startswith("Exchange")]
    assert f"exchange order #EX{rma.external_id}" in exchange and "left for staff" in exchange
    outcomes = dict(
        RefundPayment.objects.filter(refund__rma=rma).values_list("refund__outcome", "treatment")
    )
    assert outcomes == {"original_payment": "bank", "store_credit": "note", "exchange": "note"}
    assert sum(RefundPayment.objects.filter(refund__rma=rma).values_list("amount", flat=True)) == 36


def test_a_usd_refund_is_paid_from_the_usd_bank(world):
    RefundBankAccount.objects.create(
        connection=world.connection, currency="USD", nominal_code="1230"
    )
    sku = "BOOT-" + world.bp.code
    sale = world.sale([(sku, 1, "40.00", "8.00")], currencyCode="USD")
    rma = credited_and_processed(world, sale, [{"sku": sku, "price": "48.00"}], currency="USD")
    [payment] = payments_on(world, rma.sales_credit.credit_id)
    assert payment["paymentMethodCode"] == "USBANK"  # bank 1230, a USD account
    assert payment["currencyCode"] == "USD" and Decimal(payment["amountPaid"]) == 48


def test_a_refund_in_a_currency_with_no_bank_is_refused_with_the_reason(world):
    """EUR: no bank account for it, and the default (1200) is a GBP bank — even though nothing
    would stop a payment method from listing EUR against it. Nothing is posted."""
    RefundBankAccount.objects.create(
        connection=world.connection, currency="USD", nominal_code="1230"
    )
    sku = "VEST-" + world.bp.code
    sale = world.sale([(sku, 1, "10.00", "2.00")], currencyCode="EUR")
    rma = credited_and_processed(world, sale, [{"sku": sku, "price": "12.00"}], currency="EUR")
    assert payments_on(world, rma.sales_credit.credit_id) == []
    binding = RefundPayment.objects.get(refund__rma=rma)
    assert binding.state == BindingState.FAILED
    assert "No EUR bank account" in binding.last_error and "1200" in binding.last_error


def test_a_refund_in_another_currency_than_the_credit_is_refused_without_a_shop_amount(world):
    sku = "TIE-" + world.bp.code
    sale = world.sale([(sku, 1, "10.00", "2.00")])
    loop_return = world.loop_return(sale, [{"sku": sku, "price": "12.00"}])
    world.sync()
    rma = rma_for(world, loop_return["id"])
    world.loop.add_refund(loop_return["id"], "14.00", currency="USD")
    world.sync()
    assert payments_on(world, rma.sales_credit.credit_id) == []
    binding = RefundPayment.objects.get(refund__rma=rma)
    assert binding.state == BindingState.FAILED
    assert "in USD but the credit is in GBP" in binding.last_error


def test_a_presentment_refund_is_booked_with_the_shop_amount(rg_world):
    world, rg = rg_world, rg_world.returngo
    sku = "SHIRT-" + world.bp.code
    sale = world.sale([(sku, 1, "25.00", "5.00")])
    record = rg.add_rma(
        items=[{"sku": sku, "price": "25.00", "tax": "5.00"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        fire=False,
    )
    number = record["rmaSummary"]["rmaId"]
    world.sync()
    rg.add_transaction(number, "34.50", currency="EUR", shop_amount="30.00", shop_currency="GBP")
    world.sync()
    rma = rma_for(world, number)
    [payment] = payments_on(world, rma.sales_credit.credit_id)
    assert payment["currencyCode"] == "GBP" and Decimal(payment["amountPaid"]) == 30


def test_returngo_store_credit_and_unknown_types_never_leave_the_bank(rg_world):
    """The issue's case: a StoreCredit transaction of 22.00 on a 20.00 credit. And a refund
    type nobody documented is kept and shown, never posted on a guess."""
    world, rg = rg_world, rg_world.returngo
    sku = "TOP-" + world.bp.code
    sale = world.sale([(sku, 1, "16.67", "3.33")])
    record = rg.add_rma(
        items=[{"sku": sku, "price": "16.67", "tax": "3.33"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        fire=False,
    )
    number = record["rmaSummary"]["rmaId"]
    world.sync()
    rg.add_transaction(number, "22.00", type="StoreCredit", id="sc-1")
    rg.add_transaction(number, "5.00", type="RefundToWallet", id="w-1")
    world.sync()
    rma = rma_for(world, number)
    assert payments_on(world, rma.sales_credit.credit_id) == []
    store_credit = RefundPayment.objects.get(refund__external_id="sc-1")
    assert store_credit.treatment == "note" and store_credit.amount == Decimal("20.00")
    assert store_credit.bonus == Decimal("2.00")
    unknown = RefundPayment.objects.get(refund__external_id="w-1")
    assert unknown.state == BindingState.FAILED and "RefundToWallet" in unknown.last_error


def test_returngo_exchange_names_the_exchange_order(rg_world):
    world, rg = rg_world, rg_world.returngo
    sku = "JEANS-" + world.bp.code
    sale = world.sale([(sku, 1, "50.00", "10.00")])
    record = rg.add_rma(
        items=[{"sku": sku, "price": "50.00", "tax": "10.00", "resolution": "ExchangeVariant"}],
        order_name=sale.order_name,
        order_id=sale.shop_order_id,
        currency="GBP",
        fire=False,
    )
    number = record["rmaSummary"]["rmaId"]
    world.sync()
    rg.add_exchange_order(number, "#EXCH-7")
    # No summary event names an exchange order: it is seen when the return is next listed
    # after the poll's overlap (docs/returns-platforms.md) — as here, our copy read an hour ago.
    Rma.objects.filter(external_id=str(number)).update(
        platform_updated_at=timezone.now() - timedelta(hours=1)
    )
    world.sync()
    rma = rma_for(world, number)
    credit_id = rma.sales_credit.credit_id
    assert payments_on(world, credit_id) == []
    assert any(
        "exchange order #EXCH-7" in n and "60.00 GBP" in n for n in notes_on(world, credit_id)
    )


def test_the_check_validates_each_bank_currency_and_outcome_method(world):
    from connector.services.connection_check import check_connection

    connection = world.connection
    for currency, code in (("USD", "1230"), ("EUR", "1230"), ("CAD", "1200")):
        RefundBankAccount.objects.create(
            connection=connection, currency=currency, nominal_code=code
        )
    OutcomeMapping.objects.create(
        connection=connection,
        outcome="store_credit",
        treatment="payment_method",
        payment_method_code="GIFTCARD",
    )
    OutcomeMapping.objects.create(
        connection=connection,
        outcome="gift_card",
        treatment="payment_method",
        payment_method_code="BANK",
    )
    OutcomeMapping.objects.create(
        connection=connection,
        outcome="exchange",
        treatment="payment_method",
        payment_method_code="NOPE",
    )
    report = {i.field: i for i in check_connection(connection)}
    assert report["refund_method_code"].ok and "GBP account" in report["refund_method_code"].message
    assert (
        report["refund_bank_account[USD]"].ok
        and "USBANK" in report["refund_bank_account[USD]"].message
    )
    assert not report["refund_bank_account[EUR]"].ok
    assert "1230 is a USD account, not EUR" in report["refund_bank_account[EUR]"].message
    assert "1200 is a GBP account, not CAD" in report["refund_bank_account[CAD]"].message
    assert report["outcome_mapping[store_credit]"].ok
    assert "money leaving the bank" in report["outcome_mapping[gift_card]"].message
    assert not report["outcome_mapping[gift_card]"].ok
    assert "NOPE does not exist" in report["outcome_mapping[exchange]"].message


def test_a_capped_payment_whose_answer_was_lost_is_found_not_paid_twice(world):
    """Exactly once holds for a capped payment: the plan (20.00 of 22.00) is fixed before the
    POST, the lost answer is searched for, and the payment adopted."""
    OutcomeMapping.objects.create(
        connection=world.connection,
        outcome="store_credit",
        treatment=Treatment.PAYMENT_METHOD,
        payment_method_code="GIFTCARD",
    )
    sku = "CUFF-" + world.bp.code
    sale = world.sale([(sku, 1, "16.67", "3.33")])
    world.bp.control.add_fault(
        r"^/accounting-service/customer-payment/?$", "drop", method="POST", times=1
    )
    rma = credited_and_processed(
        world,
        sale,
        [{"sku": sku, "price": "20.00", "outcome": "store_credit"}],
        credit_bonus="0.10",
    )
    world.sync()
    [payment] = payments_on(world, rma.sales_credit.credit_id)
    assert Decimal(payment["amountPaid"]) == Decimal("20.00")
    binding = RefundPayment.objects.get(refund__rma=rma)
    assert binding.state == BindingState.CREATED and binding.payment_id == payment["paymentId"]


def _waiting_for_a_lock() -> bool:
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute(
            # A row lock is waited for as a transaction ID, whose lock names no database:
            # the waiting backend's own database says whose it is.
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_two_refunds_of_one_credit_planned_at_once_never_exceed_it(world, postgres):
    """Another worker is planning a 20.00 refund of a 20.00 credit (it holds the credit's lock);
    a sync planning a second 20.00 refund of it waits, then sees the first and pays nothing."""
    import threading

    from django.db import connection as db
    from django.db import transaction

    from connector.models import SalesCredit
    from connector.services.context import SyncContext
    from connector.services.refunds import record_refunds, transaction_ref_for
    from returns.models import Refund

    sku = "SHOE-" + world.bp.code
    sale = world.sale([(sku, 1, "16.67", "3.33")])
    loop_return = world.loop_return(sale, [{"sku": sku, "price": "20.00"}])
    world.sync()
    rma = rma_for(world, loop_return["id"])
    binding = rma.sales_credit
    mine = Refund.objects.select_related("rma__sales_credit").get(
        pk=Refund.objects.create(rma=rma, external_id="r-1", amount=20, currency="GBP").pk
    )
    theirs = Refund.objects.create(rma=rma, external_id="r-2", amount=20, currency="GBP")
    RefundPayment.objects.create(  # a binding not yet planned (an earlier run stopped there)
        refund=mine,
        connection=world.connection,
        account_key=binding.account_key,
        sales_credit=binding,
        transaction_ref=transaction_ref_for(world.connection, mine),
    )
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        try:
            with transaction.atomic():
                SalesCredit.objects.select_for_update().get(pk=binding.pk)
                RefundPayment.objects.create(
                    refund=theirs,
                    connection=world.connection,
                    account_key=binding.account_key,
                    sales_credit=binding,
                    transaction_ref="other-worker-r-2",
                    treatment="bank",
                    amount=20,
                    currency="GBP",
                )
                locked.set()
                release.wait(timeout=60)
        finally:
            db.close()

    def sync():  # the refund step of a sync, for the one refund
        try:
            record_refunds(SyncContext(connection=world.connection), [mine])
        finally:
            db.close()

    holder = threading.Thread(target=other_worker)
    holder.start()
    assert locked.wait(timeout=30)
    syncing = threading.Thread(target=sync)
    syncing.start()
    for _ in range(600):  # until the sync waits for the credit's lock
        if _waiting_for_a_lock():
            break
        syncing.join(timeout=0.05)
    else:
        pytest.fail("the sync never waited for the credit's lock")
    release.set()
    holder.join(timeout=60)
    syncing.join(timeout=120)
    planned = RefundPayment.objects.get(refund=mine)
    assert planned.amount == 0 and planned.bonus == 20 and planned.treatment == "note"
    paid = sum(Decimal(p["amountPaid"]) for p in payments_on(world, binding.credit_id))
    assert paid <= 20
