"""Sales credits, exactly once per approved RMA.

The guarantee rests on three things (see docs/architecture.md):
1. a binding row per RMA, claimed under `select_for_update(skip_locked=True)` and marked
   ``attempting`` (with an owner and a start time) in its own committed transaction before any
   POST;
2. a search of Brightpearl before every POST — by our externalRef, then by parent order +
   customer reference — that adopts a credit which already exists (a lost answer, a crashed
   worker, or another integration that made one for the same RMA);
3. an attempt that may have reached Brightpearl is never re-posted blindly: a 5xx or a
   transport error leaves the binding ``attempting`` and the next attempt searches first.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from brightpearl import (
    MAX_IDS_PER_CALL,
    AuthError,
    BrightpearlError,
    ServerError,
    ThrottledError,
    TransportError,
)
from returns import lifecycle
from returns.intake import advance
from returns.models import Rma

from ..models import BindingState, SalesCredit, SyncEvent
from .context import SyncContext
from .credit_plan import CreditPlan, match_credit_rows, plan_credit

SALES_ORDER = 1
SALES_CREDIT = 3


def attempt_lease() -> timedelta:
    """An attempt younger than this, owned by another execution, may still be in flight at
    Brightpearl (the POST outlives a killed worker): leave it alone until then."""
    return timedelta(seconds=settings.CREDIT_ATTEMPT_LEASE_SECONDS)


Kind, Outcome = SyncEvent.Kind, SyncEvent.Outcome


def external_ref_for(connection, rma: Rma) -> str:
    key = f"rbc:{connection.pk}:{rma.platform}:{rma.external_id}"
    if len(key) <= 64:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return f"rbc:{connection.pk}:{rma.platform}:{digest}"


def customer_ref_for(connection, rma: Rma) -> str:
    return f"{connection.customer_ref_prefix}{rma.rma_number or rma.external_id}"[:64]


def credit_candidates(connection) -> list[Rma]:
    """Approved RMAs (not flagged) whose credit is not made yet."""
    return list(
        Rma.objects.filter(connection=connection, status=lifecycle.APPROVED, flagged=False)
        .exclude(
            sales_credit__state__in=[
                BindingState.CREATED,
                BindingState.FAILED,
                BindingState.BLOCKED,
            ]
        )
        .prefetch_related("lines")
        .order_by("pk")
    )


# --- finding the original orders -----------------------------------------------------------
def find_original_orders(ctx: SyncContext, rmas: Iterable[Rma]) -> dict[int, dict | None]:
    """RMA pk → the original sales order (Order GET shape), found by the platform's order
    reference: Brightpearl externalRef = platform order ID, else customer reference = order
    name (how shop connectors usually import orders; UNCONFIRMED per shop connector, so both
    are tried and compared exactly). Searches are per distinct order, the GET is batched."""
    client = ctx.client
    order_ids: dict[int, int | None] = {}
    memo: dict[tuple[str, str], int | None] = ctx.cache.setdefault("order_lookup", {})
    for rma in rmas:
        key = (rma.order_id, rma.order_name)
        if key not in memo:
            memo[key] = _search_sales_order(client, rma.order_id, rma.order_name)
        order_ids[rma.pk] = memo[key]
    wanted = sorted({oid for oid in order_ids.values() if oid})
    orders_cache: dict[int, dict] = ctx.cache.setdefault("orders", {})
    missing = [oid for oid in wanted if oid not in orders_cache]
    if missing:
        for order in client.get_orders(missing):
            orders_cache[int(order["id"])] = order
    return {pk: orders_cache.get(oid) if oid else None for pk, oid in order_ids.items()}


def _search_sales_order(client, order_id: str, order_name: str) -> int | None:
    attempts = []
    if order_id:
        attempts.append(("externalRef", order_id))
    if order_name:
        attempts += [("customerRef", order_name), ("externalRef", order_name)]
    for column, value in attempts:
        for row in client.search_orders(orderTypeId=SALES_ORDER, **{column: value}):
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
        for row in ctx.client.search_orders(orderTypeId=SALES_CREDIT, parentOrderId=chunk):
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
    for row in client.search_orders(orderTypeId=SALES_CREDIT, externalRef=binding.external_ref):
        if row.get("externalRef") == binding.external_ref:
            return int(row["orderId"])
    if binding.parent_order_id and binding.customer_ref:
        for row in client.search_orders(
            orderTypeId=SALES_CREDIT, parentOrderId=binding.parent_order_id
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
            "external_ref": external_ref_for(ctx.connection, rma),
            "customer_ref": customer_ref_for(ctx.connection, rma),
            "order_number": rma.order_name[:64],
        },
    )
    return binding


def _claim(ctx: SyncContext, binding_id: int) -> SalesCredit | None:
    """Mark the attempt (committed) before anything reaches Brightpearl, or return None if
    another execution holds it (then note when its lease ends, for a follow-up run)."""
    owner = ctx.owner
    now = timezone.now()
    with transaction.atomic():
        binding = (
            SalesCredit.objects.select_for_update(skip_locked=True).filter(pk=binding_id).first()
        )
        if binding is None or binding.state in (
            BindingState.CREATED,
            BindingState.FAILED,
            BindingState.BLOCKED,
        ):
            return None
        if (
            binding.state == BindingState.ATTEMPTING
            and binding.attempt_owner
            and binding.attempt_owner != owner
            and binding.attempt_started_at
            and binding.attempt_started_at > now - attempt_lease()
        ):
            ends = binding.attempt_started_at + attempt_lease()
            ctx.retry_at = max(ctx.retry_at or ends, ends)
            return None
        # An earlier attempt may have reached Brightpearl: search afresh before posting.
        was_attempting = binding.state == BindingState.ATTEMPTING
        binding.state = BindingState.ATTEMPTING
        binding.attempt_owner = owner
        binding.attempt_started_at = now
        binding.attempts += 1
        binding.save(
            update_fields=["state", "attempt_owner", "attempt_started_at", "attempts", "updated_at"]
        )
    binding.was_attempting = was_attempting
    return binding


def release_attempts(owner: str) -> None:
    """At the end of a run nothing of ours is in flight: let the next run retry at once (it
    searches before posting, because the state stays ``attempting``)."""
    SalesCredit.objects.filter(state=BindingState.ATTEMPTING, attempt_owner=owner).update(
        attempt_owner=""
    )


def _already_credited(binding: SalesCredit) -> dict[int, Decimal]:
    totals: dict[int, Decimal] = defaultdict(Decimal)
    others = SalesCredit.objects.filter(
        parent_order_id=binding.parent_order_id, state=BindingState.CREATED
    ).exclude(pk=binding.pk)
    for other in others:
        for row_id, units in (other.order_row_units or {}).items():
            totals[int(row_id)] += Decimal(str(units))
    return totals


def _plan(ctx: SyncContext, rma: Rma, order: dict, binding: SalesCredit) -> CreditPlan:
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
def create_credits(ctx: SyncContext, rmas: list[Rma] | None = None) -> None:
    """Make the missing credits; every RMA ends with a recorded event."""
    if not ctx.connection.create_credits:
        return
    rmas = credit_candidates(ctx.connection) if rmas is None else rmas
    if not rmas:
        return
    orders = find_original_orders(ctx, rmas)
    if not ctx.dry_run:
        parents = {int(o["id"]) for o in orders.values() if o}
        ctx.cache["credits_on_parents"] = credits_on_parents(ctx, parents) if parents else {}
    made: list[SalesCredit] = []
    for rma in rmas:
        try:
            binding = create_credit(ctx, rma, orders.get(rma.pk))
        except AuthError:
            raise  # credentials are wrong: the whole run fails, loudly
        except BrightpearlError as exc:
            ctx.record(Kind.CREDIT, Outcome.FAILED, f"Brightpearl error: {exc}", rma=rma, error=exc)
            continue
        if binding is not None and binding.state == BindingState.CREATED and not binding.row_map:
            made.append(binding)
    capture_credit_rows(ctx, made)


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
    plan = _plan(ctx, rma, order, binding)
    if not plan.ok:
        _block(ctx, rma, binding, " ".join(plan.problems))
        return binding
    if ctx.dry_run:
        ctx.record(
            Kind.CREDIT,
            Outcome.SKIPPED,
            f"Dry run: would create a credit on order {order['id']}: {plan.payload}",
            rma=rma,
        )
        return None

    claimed = _claim(ctx, binding.pk)
    if claimed is None:
        binding.refresh_from_db()
        if binding.state != BindingState.CREATED:
            ctx.record(
                Kind.CREDIT,
                Outcome.SKIPPED,
                "Another worker is creating this credit right now.",
                rma=rma,
            )
        return None
    binding = claimed
    binding.planned_rows = [{"line_id": r.line_id, **r.payload} for r in plan.rows]
    binding.order_row_units = {str(k): str(v) for k, v in plan.order_row_units.items()}
    binding.warehouse_id = plan.payload.get("warehouseId")
    binding.save(update_fields=["planned_rows", "order_row_units", "warehouse_id", "updated_at"])

    known = ctx.cache.get("credits_on_parents", {})
    if binding.was_attempting or binding.parent_order_id not in known:
        existing = find_existing_credit(ctx.client, binding)
    else:  # a first attempt: the run's batched search of the parent orders is fresh enough
        existing = match_existing_credit(binding, known[binding.parent_order_id])
    if existing is not None:
        _finish(ctx, binding, existing, adopted=True)
        ctx.record(
            Kind.CREDIT,
            Outcome.SUCCEEDED,
            f"Sales credit {existing} already existed in Brightpearl; adopted it.",
            rma=rma,
            credit_id=existing,
        )
        return binding
    try:
        credit_id = ctx.client.create_sales_credit(plan.payload)
    except (ServerError, TransportError) as exc:
        # It may have been created: look once more now; otherwise the next attempt searches.
        found = _search_quietly(ctx, binding)
        if found is not None:
            _finish(ctx, binding, found, adopted=True)
            ctx.record(
                Kind.CREDIT,
                Outcome.SUCCEEDED,
                f"Sales credit {found} was created although the answer was lost "
                f"({exc.__class__.__name__}); adopted it.",
                rma=rma,
                credit_id=found,
            )
            return binding
        _note_error(binding, str(exc))
        ctx.record(
            Kind.CREDIT,
            Outcome.FAILED,
            f"Brightpearl did not confirm the credit ({exc}); the next attempt will "
            "search before posting again.",
            rma=rma,
            error=exc,
        )
        return binding
    except ThrottledError as exc:
        _reset(binding, str(exc))  # a 503 means nothing was written
        ctx.record(
            Kind.CREDIT, Outcome.FAILED, f"Throttled by Brightpearl: {exc}", rma=rma, error=exc
        )
        return binding
    except AuthError:
        _reset(binding, "Brightpearl refused the credentials.")
        raise
    except BrightpearlError as exc:
        SalesCredit.objects.filter(pk=binding.pk).update(
            state=BindingState.FAILED, last_error=str(exc)[:2000], attempt_owner=""
        )
        ctx.record(
            Kind.CREDIT,
            Outcome.FAILED,
            f"Brightpearl refused the credit: {exc}. Fix the cause, then use "
            "“retry selected items”.",
            rma=rma,
            error=exc,
        )
        return binding
    _finish(ctx, binding, credit_id, adopted=False)
    ctx.record(
        Kind.CREDIT,
        Outcome.SUCCEEDED,
        f"Created sales credit {credit_id} on order {order['id']} ({len(plan.rows)} rows).",
        rma=rma,
        credit_id=credit_id,
    )
    return binding


def _search_quietly(ctx: SyncContext, binding: SalesCredit) -> int | None:
    try:
        return find_existing_credit(ctx.client, binding)
    except BrightpearlError:
        return None


def _finish(ctx: SyncContext, binding: SalesCredit, credit_id: int, *, adopted: bool) -> None:
    with transaction.atomic():
        SalesCredit.objects.filter(pk=binding.pk).update(
            state=BindingState.CREATED,
            credit_id=credit_id,
            adopted=adopted,
            attempt_owner="",
            last_error="",
        )
        binding.refresh_from_db()
        rma = Rma.objects.select_for_update().get(pk=binding.rma_id)
        advance(rma, lifecycle.CREDITED)


def _note_error(binding: SalesCredit, message: str) -> None:
    SalesCredit.objects.filter(pk=binding.pk).update(last_error=message[:2000])


def _reset(binding: SalesCredit, message: str) -> None:
    SalesCredit.objects.filter(pk=binding.pk).update(
        state=BindingState.PENDING, attempt_owner="", last_error=message[:2000]
    )


def _block(ctx: SyncContext, rma: Rma, binding: SalesCredit | None, reason: str) -> None:
    """Create nothing; flag the RMA with the reason (on the platform too, once)."""
    ctx.record(Kind.CREDIT, Outcome.FLAGGED, reason, rma=rma)
    if ctx.dry_run:
        return
    from .receipts import flag_rma

    if binding is not None:
        SalesCredit.objects.filter(pk=binding.pk).update(
            state=BindingState.BLOCKED, last_error=reason[:2000]
        )
    flag_rma(ctx, rma, reason)


def capture_credit_rows(ctx: SyncContext, bindings: list[SalesCredit]) -> None:
    """Read the new credits back (batched) and store credit row IDs per RMA line."""
    if not bindings:
        return
    by_id = {b.credit_id: b for b in bindings if b.credit_id}
    try:
        credits = ctx.client.get_sales_credits(sorted(by_id))
    except BrightpearlError as exc:
        ctx.record(
            Kind.CREDIT, Outcome.FAILED, f"Could not read credit rows back: {exc}", error=exc
        )
        return
    for credit in credits:
        binding = by_id.get(int(credit["id"]))
        if binding is None:
            continue
        binding.row_map = match_credit_rows(binding.planned_rows, credit)
        binding.warehouse_id = binding.warehouse_id or credit.get("warehouseId")
        binding.save(update_fields=["row_map", "warehouse_id", "updated_at"])


def retry_binding(binding: SalesCredit) -> None:
    """Staff asked to retry: a failed/blocked credit goes back to pending (searching first)."""
    SalesCredit.objects.filter(
        pk=binding.pk, state__in=[BindingState.FAILED, BindingState.BLOCKED]
    ).update(state=BindingState.ATTEMPTING, attempt_owner="", last_error="")
