"""Sales credits, exactly once per approved RMA.

The rules (claim, in-flight lease, search before writing again, settle known outcomes) live in
`exactly_once.py`, shared with payments. This module finds the original orders, plans the
credit (`credit_plan.py`), searches Brightpearl for a credit that already exists — ours by
externalRef, or another integration's for the same RMA by parent order + customer reference —
and adopts it, or posts one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from brightpearl import (
    MAX_IDS_PER_CALL,
    ORDER_TYPE_SALES_CREDIT,
    ORDER_TYPE_SALES_ORDER,
    AuthError,
    BrightpearlError,
    BudgetSpent,
    NotFoundError,
    ThrottledError,
    TransportError,
    ValidationError,
    finishing,
)
from returns import lifecycle
from returns.intake import advance, clear_flag
from returns.models import Rma

from ..models import BindingState, RefundPayment, SalesCredit, SyncEvent
from . import exactly_once
from .chunks import release_garbage
from .context import SyncContext
from .credit_plan import Credited, CreditPlan, plan_credit
from .credit_rows import capture_credit_rows
from .receipts import flag_rma

Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome
logger = logging.getLogger(__name__)


def external_ref_for(connection, rma: Rma) -> str:
    key = f"rbc:{connection.pk}:{rma.platform}:{rma.external_id}"
    if len(key) <= 64:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return f"rbc:{connection.pk}:{rma.platform}:{digest}"


def customer_ref_for(connection, rma: Rma) -> str:
    return f"{connection.customer_ref_prefix}{rma.rma_number or rma.external_id}"[:64]


def credit_candidates(connection, pks: Iterable[int] | None = None) -> list[Rma]:
    """Approved RMAs (not flagged) whose credit is not made yet — and flagged ones whose flag
    is a credit-planning problem staff asked to re-check (a retried blocked credit). `pks`:
    only among these (a batch of `credit_candidate_ids`)."""
    candidates = _candidates(connection)
    if pks is not None:
        candidates = candidates.filter(pk__in=list(pks))
    return list(candidates.prefetch_related("lines").order_by("pk"))


def credit_candidate_ids(connection) -> list[int]:
    return list(_candidates(connection).order_by("pk").values_list("pk", flat=True))


def _candidates(connection):
    recheck = Q(
        flagged=True,
        sales_credit__state=BindingState.PENDING,
        sales_credit__last_error=F("flag_reason"),
    )
    return (
        Rma.objects.filter(connection=connection)
        .filter(Q(status=lifecycle.APPROVED, flagged=False) | recheck)
        .exclude(
            sales_credit__state__in=[
                BindingState.CREATED,
                BindingState.FAILED,
                BindingState.BLOCKED,
            ]
        )
    )


# --- finding the original orders -----------------------------------------------------------
def find_original_orders(ctx: SyncContext, rmas: Iterable[Rma]) -> dict[int, dict | None]:
    """RMA pk → the original sales order (Order GET shape), found by the platform's order
    reference (`find_order_ids`), then read in one batched Order GET."""
    keys = {rma.pk: (rma.order_id, rma.order_name) for rma in rmas}
    order_ids = dict(zip(keys, find_order_ids(ctx, keys.values()), strict=True))
    wanted = sorted({oid for oid in order_ids.values() if oid})
    orders_cache: dict[int, dict] = ctx.cache.setdefault("orders", {})
    missing = [oid for oid in wanted if oid not in orders_cache]
    if missing:
        for order in ctx.client.get_orders(missing):
            orders_cache[int(order["id"])] = order
    return {pk: orders_cache.get(oid) if oid else None for pk, oid in order_ids.items()}


def find_order_ids(ctx: SyncContext, keys: Iterable[tuple[str, str]]) -> list[int | None]:
    """The sales order ID of each (platform order ID, order name), None when Brightpearl has no
    such order, in the order given. Found by Brightpearl externalRef = platform order ID, else
    customer reference = order name (how shop connectors usually import orders; UNCONFIRMED per
    shop connector, so both are tried and compared exactly). Every order is looked up at once —
    one sales-order search by all the order names (200 a call) — and only an order that search
    does not settle is searched for on its own. Remembered for the run (`ctx.cache`), so the
    credit step, reconciliation and backfill each pay for a reference once."""
    keys = list(keys)
    memo: dict[tuple[str, str], int | None] = ctx.cache.setdefault("order_lookup", {})
    pending = sorted({key for key in keys if key not in memo})
    memo.update(_orders_by_name(ctx.client, pending))
    for key in pending:
        if key not in memo:
            memo[key] = _search_sales_order(ctx.client, *key)
    return [memo[key] for key in keys]


def _orders_by_name(client, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(order ID, order name) → sales order ID, for the orders one batched search by customer
    reference settles: a row whose customer reference is the order name, and whose externalRef
    is the platform order ID when the return names one (externalRef is what the one-by-one
    search tries first, so a row that only matches by name is left to it). A search Brightpearl
    refuses (the set syntax is UNCONFIRMED) settles nothing: the one-by-one search does it."""
    names = [name for _, name in keys if name]
    if not names:
        return {}
    by_name: dict[str, list[dict]] = {}
    try:
        for row in client.search_sales_orders_by_customer_refs(names):
            by_name.setdefault(str(row.get("customerRef") or "").strip(), []).append(row)
    except (ValidationError, NotFoundError) as exc:
        logger.warning("Batched sales-order search refused (%s); searching one by one.", exc)
        return {}
    found = {}
    for order_id, name in keys:
        for row in by_name.get(name.strip(), []) if name else []:
            if not order_id or str(row.get("externalRef") or "").strip() == order_id.strip():
                found[(order_id, name)] = int(row["salesOrderId"])
                break
    return found


def _search_sales_order(client, order_id: str, order_name: str) -> int | None:
    attempts = []
    if order_id:
        attempts.append(("externalRef", order_id))
    if order_name:
        attempts += [("customerRef", order_name), ("externalRef", order_name)]
    for column, value in attempts:
        for row in client.search_orders(orderTypeId=ORDER_TYPE_SALES_ORDER, **{column: value}):
            if str(row.get(column) or "").strip() == value.strip():
                return int(row["orderId"])
    return None


def credits_on_parents(ctx: SyncContext, parent_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Every credit already on these orders, in one paged search (parentOrderId is an ID set):
    what a first attempt checks before posting, instead of two searches per RMA."""
    found: dict[int, list[dict]] = {pid: [] for pid in parent_ids}
    ids = sorted(found)
    for start in range(0, len(ids), MAX_IDS_PER_CALL):
        chunk = ids[start : start + MAX_IDS_PER_CALL]
        for row in ctx.client.search_orders(
            orderTypeId=ORDER_TYPE_SALES_CREDIT, parentOrderId=chunk
        ):
            found.setdefault(int(row.get("parentOrderId") or 0), []).append(row)
    return found


def match_existing_credit(binding: SalesCredit, rows: Iterable[dict]) -> int | None:
    """Ours (externalRef), or another integration's for the same RMA (customer reference)."""
    rows = list(rows)
    for row in rows:
        if row.get("externalRef") == binding.external_ref:
            return int(row["orderId"])
    for row in rows:
        if binding.customer_ref and str(row.get("customerRef") or "").strip() == (
            binding.customer_ref
        ):
            return int(row["orderId"])
    return None


def find_existing_credit(client, binding: SalesCredit) -> int | None:
    """A credit already made for this RMA, searched for now: ours (externalRef), or any credit
    on the parent order with the RMA's customer reference (a lost answer, another integration).
    Used before every retry, where a batched result from earlier in the run could be stale."""
    for row in client.search_orders(
        orderTypeId=ORDER_TYPE_SALES_CREDIT, externalRef=binding.external_ref
    ):
        if row.get("externalRef") == binding.external_ref:
            return int(row["orderId"])
    if binding.parent_order_id and binding.customer_ref:
        for row in client.search_orders(
            orderTypeId=ORDER_TYPE_SALES_CREDIT, parentOrderId=binding.parent_order_id
        ):
            if str(row.get("customerRef") or "").strip() == binding.customer_ref:
                return int(row["orderId"])
    return None


# --- the binding ---------------------------------------------------------------------------
def _binding_for(ctx: SyncContext, rma: Rma, order: dict | None) -> SalesCredit:
    binding, _ = SalesCredit.objects.get_or_create(
        rma=rma,
        defaults={
            "connection": ctx.connection,
            "account_key": ctx.connection.brightpearl_account_key,
            "external_ref": external_ref_for(ctx.connection, rma),
            "customer_ref": customer_ref_for(ctx.connection, rma),
            "order_number": rma.order_name[:64],
        },
    )
    return binding


def release_attempts(owner: str) -> None:
    """A run ends: its writes are no longer owned by it. A write whose outcome is unknown keeps
    its lease, so no other execution writes again before Brightpearl has had time to finish."""
    exactly_once.release(SalesCredit, owner)
    exactly_once.release(RefundPayment, owner)


def _already_credited(binding: SalesCredit) -> dict[int, Credited]:
    """What other credits on the same order — in the same Brightpearl account, including ones
    that may still be in flight — took from each order row."""
    totals: dict[int, Credited] = {}
    others = (
        SalesCredit.objects.filter(
            account_key=binding.account_key,
            parent_order_id=binding.parent_order_id,
            state__in=[BindingState.CREATED, BindingState.ATTEMPTING],
        )
        .exclude(pk=binding.pk)
        .exclude(order_row_units={})
        .values_list("order_row_units", "order_row_money")
    )
    for units_by_row, money_by_row in others:
        for row_id, units in (units_by_row or {}).items():
            before = totals.get(int(row_id), Credited(Decimal(0), Decimal(0), Decimal(0)))
            money = (money_by_row or {}).get(str(row_id))
            net = before.net + Decimal(money[0]) if money and before.net is not None else None
            tax = before.tax + Decimal(money[1]) if money and before.tax is not None else None
            totals[int(row_id)] = Credited(before.units + Decimal(str(units)), net, tax)
    return totals


def plan_for(ctx: SyncContext, rma: Rma, order: dict, binding: SalesCredit) -> CreditPlan:
    connection = ctx.connection
    mapping = {m.destination_id: m.warehouse_id for m in connection.warehouse_mappings.all()}
    return plan_credit(
        rma=rma,
        lines=rma.lines.all(),
        order=order,
        external_ref=binding.external_ref,
        customer_ref=binding.customer_ref,
        warehouse_id=mapping.get(rma.destination_id) if rma.destination_id else None,
        status_id=connection.credit_status_id,
        channel_id=connection.credit_channel_id,
        installed_integration_instance_id=connection.brightpearl_installed_integration_instance_id,
        fee_nominal_code=connection.fee_nominal_code or None,
        already_credited=_already_credited(binding),
    )


# --- the step ------------------------------------------------------------------------------
# Returns credited per batch: one batched order search, Order GET and search of the credits on
# those orders each (200 IDs a call), and the batch's orders let go after it — so a run's
# memory follows the batch, not the backlog.
CREDIT_BATCH = MAX_IDS_PER_CALL


def create_credits(ctx: SyncContext, rmas: list[Rma] | None = None) -> None:
    """Make the missing credits, a batch at a time; every RMA ends with a recorded event.

    A batch's RMAs are read inside the call that credits them and nothing here keeps a name
    for them, so when the call returns the whole batch is garbage and is collected before the
    next is read (the last batch's with the step's, `sync._run_steps`): keeping the previous
    batch alive meanwhile made a 1,000-return run peak at 1.5x a 200-return one
    (bench/memory.py --mode new --steps)."""
    if not ctx.connection.create_credits:
        return
    if rmas is None:
        ids = credit_candidate_ids(ctx.connection)
        for start in range(0, len(ids), CREDIT_BATCH):
            release_garbage(start and CREDIT_BATCH)  # the previous batch's (the last: the step's)
            _credit_batch(ctx, credit_candidates(ctx.connection, ids[start : start + CREDIT_BATCH]))
        return
    for start in range(0, len(rmas), CREDIT_BATCH):
        # The caller's RMAs stay theirs; the previous batch's bindings, plans and orders go.
        release_garbage(start and CREDIT_BATCH)
        _credit_batch(ctx, rmas[start : start + CREDIT_BATCH])


def _credit_batch(ctx: SyncContext, rmas: list[Rma]) -> None:
    if not rmas:
        return
    orders = find_original_orders(ctx, rmas)
    if not ctx.dry_run:
        parents = {int(o["id"]) for o in orders.values() if o}
        ctx.cache["credits_on_parents"] = credits_on_parents(ctx, parents) if parents else {}
    made: list[SalesCredit] = []
    try:
        for rma in rmas:
            binding = _credit_one(ctx, rma, orders.get(rma.pk))
            if binding and binding.state == BindingState.CREATED and not binding.row_map:
                made.append(binding)
    finally:
        # The rows of the credits made are read back even when the run's turn ended mid-batch
        # (the read belongs to them): a later edit of a return maps its lines by them.
        with finishing():
            capture_credit_rows(ctx, made)
    cached = ctx.cache.get("orders", {})
    for order in orders.values():
        if order:
            cached.pop(int(order["id"]), None)


def _credit_one(ctx: SyncContext, rma: Rma, order: dict | None) -> SalesCredit | None:
    try:
        return create_credit(ctx, rma, order)
    except AuthError:
        raise  # credentials are wrong: the whole run fails, loudly
    except BrightpearlError as exc:
        ctx.record(Kind.CREDIT, Outcome.FAILED, f"Brightpearl error: {exc}", rma=rma, error=exc)
        return None


def create_credit(ctx: SyncContext, rma: Rma, order: dict | None) -> SalesCredit | None:
    if order is None:
        reason = (
            f"Original order {rma.order_name or rma.order_id or '(no reference)'} was not "
            "found in Brightpearl."
        )
        _block(ctx, rma, None, reason)
        return None
    binding = _binding_for(ctx, rma, order)
    if binding.parent_order_id != int(order["id"]):
        binding.parent_order_id = int(order["id"])
        binding.currency = ((order.get("currency") or {}).get("orderCurrencyCode") or "")[:3]
        if not ctx.dry_run:
            binding.save(update_fields=["parent_order_id", "currency", "updated_at"])
    plan = plan_for(ctx, rma, order, binding)
    if not plan.ok:
        _block(ctx, rma, binding, " ".join(plan.problems))
        return binding
    if ctx.dry_run:
        ctx.record(
            Kind.CREDIT,
            Outcome.SKIPPED,
            f"would create a credit on order {order['id']}:\n"
            + json.dumps(plan.payload, indent=2, sort_keys=True),
            rma=rma,
        )
        return None

    claim = exactly_once.claim(SalesCredit, binding.pk, ctx.owner)
    if claim.binding is None:
        _not_claimed(ctx, rma, claim)
        return None
    # A spent budget anywhere up to the POST's answer sent nothing: the claim is undone.
    with exactly_once.budget_pause(claim.binding, sent_before=claim.search_first):
        return _attempt(ctx, rma, order, claim)


def _attempt(ctx: SyncContext, rma: Rma, order: dict, claim: exactly_once.Claim) -> SalesCredit:
    """One claimed attempt: search, plan, post. When an earlier attempt may have sent the
    stored plan, Brightpearl is searched *before* anything is planned again, and a credit found
    is adopted with the plan it was sent with — planning first would store other amounts than
    the credit holds (the others on the same order changed meanwhile), and the next credit of
    that order row would be planned from them: a cent off."""
    binding = claim.binding
    if claim.search_first:
        existing = find_existing_credit(ctx.client, binding)
        if existing is not None:
            return _adopt(ctx, rma, binding, existing)
    plan = _replan_and_store(ctx, rma, order, binding)
    if not plan.ok:  # another return of this order took the units meanwhile
        exactly_once.not_written(binding, " ".join(plan.problems))
        _block(ctx, rma, binding, " ".join(plan.problems))
        return binding
    if not claim.search_first:
        known = ctx.cache.get("credits_on_parents", {})
        if binding.parent_order_id in known:  # the run's batched search is fresh enough
            existing = match_existing_credit(binding, known[binding.parent_order_id])
        else:
            existing = find_existing_credit(ctx.client, binding)
        if existing is not None:
            return _adopt(ctx, rma, binding, existing)
    return _post_credit(ctx, rma, order, binding, plan)


def _adopt(ctx: SyncContext, rma: Rma, binding: SalesCredit, existing: int) -> SalesCredit:
    _finish(binding, existing, adopted=True)
    ctx.record(
        Kind.CREDIT,
        Outcome.SUCCEEDED,
        f"Sales credit {existing} already existed in Brightpearl; adopted it.",
        rma=rma,
        credit_id=existing,
    )
    return binding


def _replan_and_store(ctx: SyncContext, rma: Rma, order: dict, binding: SalesCredit) -> CreditPlan:
    """Plan again, and keep the plan, while holding every binding of this order (in this
    Brightpearl account) locked: two returns of one order planned at the same moment (a webhook
    and a sync, two workers) would otherwise both count the other's units as free and both
    take the first cents of a row. The lock is held only while planning, never across the
    POST."""
    with transaction.atomic():
        list(
            SalesCredit.objects.select_for_update()
            .filter(account_key=binding.account_key, parent_order_id=binding.parent_order_id)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        plan = plan_for(ctx, rma, order, binding)
        if plan.ok:
            _store_plan(binding, plan)
    return plan


def _store_plan(binding: SalesCredit, plan: CreditPlan) -> None:
    """What this attempt sends, kept on the binding before it is sent (credit rows are mapped
    back to RMA lines by it; later credits of the same order subtract what it records)."""
    binding.planned_rows = [{"line_id": r.line_id, **r.payload} for r in plan.rows]
    binding.order_row_units = {str(k): str(v) for k, v in plan.order_row_units.items()}
    binding.order_row_money = {
        str(k): [str(net), str(tax)] for k, (net, tax) in plan.order_row_money.items()
    }
    binding.warehouse_id = plan.payload.get("warehouseId")
    binding.save(
        update_fields=[
            "planned_rows",
            "order_row_units",
            "order_row_money",
            "warehouse_id",
            "updated_at",
        ]
    )


def _not_claimed(ctx: SyncContext, rma: Rma, claim: exactly_once.Claim) -> None:
    if claim.wait_until is not None:
        ctx.follow_up_at(claim.wait_until)
        ctx.record(
            Kind.CREDIT,
            Outcome.SKIPPED,
            "An earlier attempt to create this credit may still be finishing in Brightpearl; "
            "nothing is sent again until "
            f"{timezone.localtime(claim.wait_until):%H:%M:%S}, when Brightpearl is searched "
            "for it first.",
            rma=rma,
        )
    elif claim.busy:
        ctx.record(
            Kind.CREDIT,
            Outcome.SKIPPED,
            "Another worker is creating this credit right now.",
            rma=rma,
        )


def _post_credit(
    ctx: SyncContext, rma: Rma, order: dict, binding: SalesCredit, plan: CreditPlan
) -> SalesCredit:
    try:
        credit_id = ctx.client.create_sales_credit(plan.payload)
    except AuthError:
        exactly_once.not_written(binding, "Brightpearl refused the credentials.")
        raise
    except BrightpearlError as exc:
        if exactly_once.is_unknown_outcome(exc):
            return _unknown_outcome(ctx, rma, binding, exc)
        if isinstance(exc, ThrottledError | TransportError):  # 503 / never sent: not written
            exactly_once.not_written(binding, str(exc))
            ctx.record(
                Kind.CREDIT, Outcome.FAILED, f"Brightpearl was busy: {exc}", rma=rma, error=exc
            )
            return binding
        exactly_once.refused(binding, str(exc))
        ctx.record(
            Kind.CREDIT,
            Outcome.FAILED,
            f"Brightpearl refused the credit: {exc}. Fix the cause, then use "
            "“retry selected items”.",
            rma=rma,
            error=exc,
        )
        return binding
    _finish(binding, credit_id, adopted=False)
    ctx.record(
        Kind.CREDIT,
        Outcome.SUCCEEDED,
        f"Created sales credit {credit_id} on order {order['id']} ({len(plan.rows)} rows).",
        rma=rma,
        credit_id=credit_id,
    )
    return binding


def _unknown_outcome(
    ctx: SyncContext, rma: Rma, binding: SalesCredit, exc: BrightpearlError
) -> SalesCredit:
    """The POST may have been executed: look once at once (a dropped answer is usually there
    already); otherwise the attempt's lease keeps everyone from posting until a search can
    decide, and a follow-up run is asked for when it ends."""
    found = _search_quietly(ctx, binding)
    if found is not None:
        _finish(binding, found, adopted=True)
        ctx.record(
            Kind.CREDIT,
            Outcome.SUCCEEDED,
            f"Sales credit {found} was created although the answer was lost "
            f"({exc.__class__.__name__}); adopted it.",
            rma=rma,
            credit_id=found,
        )
        return binding
    until = exactly_once.in_doubt(ctx, binding, exc)
    then = (
        f"Nothing is sent again until {timezone.localtime(until):%H:%M:%S}; then Brightpearl "
        "is searched for it first."
        if until is not None
        else "The next run searches Brightpearl for it first."
    )
    ctx.record(
        Kind.CREDIT,
        Outcome.FAILED,
        f"Brightpearl did not confirm the credit ({exc}). {then}",
        rma=rma,
        error=exc,
    )
    return binding


def _search_quietly(ctx: SyncContext, binding: SalesCredit) -> int | None:
    """After a POST with an unknown outcome: a failed search, or one the spent budget did not
    let out, finds nothing — the attempt keeps its lease and is searched for later."""
    try:
        return find_existing_credit(ctx.client, binding)
    except (BrightpearlError, BudgetSpent):
        return None


def _finish(binding: SalesCredit, credit_id: int, *, adopted: bool) -> None:
    blocked_by = binding.last_error  # a planning problem staff asked to re-check, now gone?
    with transaction.atomic():
        exactly_once.succeeded(binding, credit_id=credit_id, adopted=adopted)
        binding.refresh_from_db()
        rma = Rma.objects.select_for_update().get(pk=binding.rma_id)
        if rma.flagged and blocked_by and rma.flag_reason == blocked_by:
            clear_flag(rma)
        advance(rma, lifecycle.CREDITED)


def _block(ctx: SyncContext, rma: Rma, binding: SalesCredit | None, reason: str) -> None:
    """Create nothing; flag the RMA with the reason (on the platform too, once). The binding
    remembers the reason, so a staff retry can have it re-checked."""
    ctx.record(Kind.CREDIT, Outcome.FLAGGED, reason, rma=rma)
    if ctx.dry_run:
        return
    binding = binding or _binding_for(ctx, rma, None)
    SalesCredit.objects.filter(pk=binding.pk).update(
        state=BindingState.BLOCKED, last_error=reason[:2000]
    )
    flag_rma(ctx, rma, reason)
