"""Fixing what reconciliation found (`reconcile.py` only reads): the missing credit or payment
made through the sync's own credit and refund steps — claim, search, adopt or post, exactly
once — never a direct write. Each fix is a sync run staff can read, and is re-checked against
the platform and Brightpearl when it runs, not when the report was made.
"""

from __future__ import annotations

from django.utils import timezone

from returns.intake import upsert_rma
from returns.models import Rma

from ..models import BindingState, Connection, SalesCredit, SyncRun
from .context import SyncContext
from .credits import create_credits, release_attempts
from .leases import run_heartbeat
from .reconcile import (
    CREDIT_EXPECTED,
    FIX_CREDIT,
    FIX_PAYMENT,
    MISSING_CREDIT,
    Comparison,
    bindings_for,
    from_local,
    parent_orders,
    read_brightpearl,
)
from .refunds import record_refunds


class NotFixable(Exception):
    """The difference cannot be fixed safely now; the message says why."""


def _stored_return(ctx: SyncContext, external_id: str) -> Rma:
    """The return as stored, taken in from the platform first when it can be (the same intake
    as a sync), so the fix works on what the platform says now."""
    platform = ctx.platform
    if platform is not None:
        rma, _ = upsert_rma(ctx.connection, platform.fetch(external_id))
        return rma
    rma = Rma.objects.filter(connection=ctx.connection, external_id=external_id).first()
    if rma is None:
        raise NotFixable(f"Return {external_id} is not stored and its platform cannot be read.")
    return rma


def _check_credit_fix(ctx: SyncContext, rma: Rma) -> None:
    """Compare this one return again right before a credit is made: another integration's
    credit may have appeared on its order since the report, and a second credit would double
    it. A credit for it by our references is fine: the credit step adopts it."""
    ret = from_local(rma)
    bindings = bindings_for(ctx.connection, [ret])
    parents = parent_orders(ctx, [ret], bindings)
    books = read_brightpearl(ctx, parents, bindings)
    _row, found = Comparison(ctx, books, bindings).row(ret, parents[0])
    for difference in found:
        if difference.kind == MISSING_CREDIT and not difference.fix:
            raise NotFixable(difference.message)


def fix(
    connection: Connection, kind: str, external_id: str, refund_id: str = "", *, trigger: str = ""
) -> SyncContext:
    """Create the missing credit or payment through the normal exactly-once path (search,
    adopt, or post — never a second one), recorded as a sync run staff can read. Returns the
    context; its `printed` lines say what happened. Raises NotFixable with the reason."""

    ctx = SyncContext(connection=connection)
    ctx.run = SyncRun.objects.create(
        connection=connection,
        trigger=trigger or SyncRun.Trigger.COMMAND,
        message=f"Reconciliation fix ({kind}) of return {external_id}.",
    )
    status, message = SyncRun.Status.SUCCEEDED, ctx.run.message
    try:
        with run_heartbeat(ctx.run.pk):  # a fix whose worker dies is closed as interrupted
            _fix(ctx, kind, external_id, refund_id)
    except NotFixable as exc:
        status, message = SyncRun.Status.SKIPPED, f"{message} Not fixed: {exc}"
        raise
    except Exception as exc:
        status, message = SyncRun.Status.FAILED, f"{message} Failed: {exc}"
        raise
    finally:
        release_attempts(ctx.owner)
        failed = sum(v for k, v in ctx.counts.items() if k.endswith("_failed"))
        SyncRun.objects.filter(pk=ctx.run.pk).update(
            status=SyncRun.Status.PARTIAL if failed and status == "succeeded" else status,
            message=message[:2000],
            counts=dict(ctx.counts),
            brightpearl_requests=ctx.requests_made,
            finished_at=timezone.now(),
        )
    return ctx


def _fix(ctx: SyncContext, kind: str, external_id: str, refund_id: str) -> None:

    connection = ctx.connection
    rma = _stored_return(ctx, external_id)
    binding = SalesCredit.objects.filter(rma=rma).first()
    if kind == FIX_CREDIT:
        if binding is not None and binding.state == BindingState.CREATED:
            ctx.printed.append(f"Already credited: sales credit {binding.credit_id}.")
            return
        if rma.status not in CREDIT_EXPECTED:
            raise NotFixable(f"Return {external_id} is {rma.status}: no credit is due.")
        if not connection.create_credits:
            raise NotFixable("Creating credits is switched off for this connection.")
        _check_credit_fix(ctx, rma)
        create_credits(ctx, [rma])
        return
    if kind == FIX_PAYMENT:
        refund = rma.refunds.filter(external_id=refund_id).first()
        if refund is None:
            raise NotFixable(f"Refund {refund_id} of return {external_id} is not on the platform.")
        if binding is None or binding.state != BindingState.CREATED:
            raise NotFixable("The return has no credit made by the connector to pay against.")
        if not connection.record_refunds:
            raise NotFixable("Recording refunds is switched off for this connection.")
        record_refunds(ctx, [refund])
        return
    raise NotFixable(f"{kind!r} is not a difference the connector fixes.")
