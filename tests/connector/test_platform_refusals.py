"""A platform that refuses an action, in any shape it documents, is a refusal: recorded with the
platform's own words, and the return does not advance. Real HTTP against the sandboxes."""

import pytest

from connector.models import SalesCredit, SyncEvent
from connector.services.context import SyncContext
from connector.services.receipts import update_receipts
from returns.models import Rma

pytestmark = pytest.mark.django_db


def credited_and_received(world):
    sku = "VEST-" + world.bp.code
    sale = world.sale([(sku, 1, "40.00", "8.00")])
    loop_return = world.loop_return(sale, [{"sku": sku}])
    world.sync()
    rma = Rma.objects.get(connection=world.connection, external_id=str(loop_return["id"]))
    world.bp.control.receive(rma.sales_credit.credit_id)
    return rma, loop_return


def receipt_step(world):
    ctx = SyncContext(connection=world.connection)
    update_receipts(ctx, list(SalesCredit.objects.filter(connection=world.connection)))
    return ctx


def test_loop_refusing_to_process_a_cancelled_return_with_http_200_is_a_refusal(world):
    rma, loop_return = credited_and_received(world)
    # Cancelled in Loop's admin after our last poll: Loop answers 200 {"message": …}.
    world.loop.set_state(loop_return["id"], "cancelled")
    receipt_step(world)

    rma.refresh_from_db()
    assert rma.status == "received"  # not processed: Loop said no
    assert SalesCredit.objects.get(rma=rma).processed_at is None
    event = SyncEvent.objects.filter(rma=rma, kind=SyncEvent.Kind.PROCESS).get()
    assert event.outcome == SyncEvent.Outcome.FAILED
    assert "Return is cancelled and therefore cannot be processed." in event.message
    assert world.loop.actions_for(loop_return["id"]) == []


def test_a_process_answer_lost_to_the_client_timeout_is_settled_by_the_next_run(world, monkeypatch):
    rma, loop_return = credited_and_received(world)
    world.loop.configure(slow_actions={"process": 1.5})
    from connector.services import platforms

    original = platforms.adapter_for

    def impatient(connection, **options):
        return original(connection, **{**options, "timeout": (2.0, 0.5), "max_retries": 0})

    monkeypatch.setattr("connector.services.context.adapter_for", impatient)
    try:
        receipt_step(world)  # Loop processes it, but the answer comes after our timeout
    finally:
        monkeypatch.undo()
        world.loop.configure(slow_actions={})
    rma.refresh_from_db()
    assert rma.status == "received"  # outcome unknown: not counted as processed yet
    assert SalesCredit.objects.get(rma=rma).processed_at is None

    receipt_step(world)  # the next run: Loop says "closed", so it was done — once
    rma.refresh_from_db()
    assert rma.status == "processed"
    assert world.loop.actions_for(loop_return["id"]) == ["process"]


def test_a_bug_in_the_adapter_is_not_recorded_as_a_platform_refusal(world, monkeypatch):
    """Only a PlatformError is the platform's answer; a bug surfaces (the run fails, the claim
    stays for staff to check, as after a crash) instead of being retried every run under
    "the platform refused"."""
    rma, loop_return = credited_and_received(world)
    from returns.platforms.loop.adapter import LoopPlatform

    def broken(self, rma):
        raise TypeError("a bug in the adapter")

    monkeypatch.setattr(LoopPlatform, "process", broken)
    with pytest.raises(TypeError):
        receipt_step(world)
    assert not SyncEvent.objects.filter(rma=rma, message__contains="refused to process").exists()
    assert world.loop.actions_for(loop_return["id"]) == []
