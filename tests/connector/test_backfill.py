"""Backfill over real HTTP: returns created on the Loop sandbox weeks before the connection,
credits already made in the Brightpearl sandbox by another integration. A dry run writes
nothing and says what would happen; the real run adopts the existing credit instead of posting
a second one; progress is counted window by window; the admin queues it on the bulk queue."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from connector import queues
from connector.models import BackfillJob, SalesCredit, SyncRun
from connector.services import backfill
from returns.models import Rma
from tests.support.world import World

pytestmark = pytest.mark.django_db

LINE = {"sku": "MUG-1", "price": "8.00", "tax": "1.60"}


@pytest.fixture
def history(world: World):
    """Three returns from three weeks ago: one already credited in Brightpearl by another
    integration (same customer reference), one to credit, one cancelled."""
    weeks_ago = timezone.now() - timedelta(days=21)
    made = {}
    for offset, name in enumerate(("adopt", "create", "cancelled")):
        sale = world.sale([("MUG-1", 1, "8.00", "1.60")])
        state = "cancelled" if name == "cancelled" else "open"
        ret = world.loop_return(
            sale, [LINE], state=state, created_at=weeks_ago + timedelta(days=offset * 3)
        )
        made[name] = (sale, str(ret["id"]))
    sale, ret_id = made["adopt"]
    existing = world.bp.control.seed(
        orders=[
            {
                "orderTypeCode": "SC",
                "parentOrderId": sale.order_id,
                "contactId": world.contact_id,
                "reference": f"RMA-{ret_id}",
                "rows": [{"sku": "MUG-1", "quantity": 1, "net": "8.00", "tax": "1.60"}],
            }
        ]
    )["orders"][0]
    world.bp.control.clear_requests()
    return {name: ret_id for name, (_, ret_id) in made.items()} | {"existing": existing}


def _since() -> timezone.datetime:
    return timezone.now() - timedelta(days=30)


def _run(world: World, *, dry_run: bool, **kwargs) -> BackfillJob:
    job = backfill.request_backfill(world.connection, _since(), dry_run=dry_run)
    outcome = backfill.run_backfill(job.pk, **kwargs)
    assert outcome.retry_after is None
    job.refresh_from_db()
    return job


def test_dry_run_writes_nothing_and_says_what_it_would_do(world: World, history):
    job = _run(world, dry_run=True)

    assert job.status == BackfillJob.Status.SUCCEEDED
    assert job.counts == {
        "found": 3,
        "would_import": 3,
        "would_adopt": 1,
        "would_create": 1,
        "no_credit_due": 1,
    }
    plan = "\n".join(job.plan)
    assert f"would adopt sales credit {history['existing']}" in plan
    assert not Rma.objects.filter(connection=world.connection).exists()
    assert not SalesCredit.objects.exists()
    assert [r for r in world.bp.control.requests() if r["method"] != "GET"] == []
    # The two returns due a credit: their orders in one batched sales-order search and the
    # credits already on those orders in one search — two requests, not two per return.
    paths = [r["path"] for r in world.bp.control.requests()]
    assert sum(p.endswith("/sales-order-search") for p in paths) == 1
    assert sum(p.endswith("/order-search") for p in paths) == 1
    assert job.brightpearl_requests == len(paths) == 2


def test_backfill_adopts_the_existing_credit_instead_of_posting(world: World, history):
    job = _run(world, dry_run=False)

    assert job.status == BackfillJob.Status.SUCCEEDED, job.message
    assert job.counts == {
        "found": 3,
        "imported": 3,
        "credits_adopted": 1,
        "credits_created": 1,
        "no_credit_due": 1,
    }
    adopted = SalesCredit.objects.get(rma__external_id=history["adopt"])
    assert (adopted.credit_id, adopted.adopted) == (history["existing"], True)
    posts = [
        r
        for r in world.bp.control.requests()
        if r["method"] == "POST" and "/sales-credit" in r["path"]
    ]
    assert len(posts) == 1  # only the return without a credit got one
    assert len(world.credits()) == 2
    again = _run(world, dry_run=False)  # a second backfill of the same dates changes nothing
    assert again.counts == {"found": 3, "already_stored": 3, "no_credit_due": 3}
    assert len(world.credits()) == 2


def test_progress_is_counted_window_by_window(world: World, history, monkeypatch):
    monkeypatch.setattr(backfill, "WINDOW", timedelta(days=4))
    seen = []
    job = _run(
        world,
        dry_run=True,
        on_progress=lambda j: seen.append((j.reached, j.counts.get("found", 0), j.progress)),
    )
    reached = [r for r, _, _ in seen]
    assert reached == sorted(reached) and len(set(reached)) == len(reached) >= 8  # 30 days / 4
    assert [found for _, found, _ in seen] == sorted(found for _, found, _ in seen)
    assert seen[-1][1] == 3 and seen[-1][2] == pytest.approx(1.0)
    assert job.reached == job.until and job.committed_counts == job.counts


def test_a_resumed_job_counts_nothing_twice(world: World, history, monkeypatch):
    monkeypatch.setattr(backfill, "WINDOW", timedelta(days=4))
    job = _run(world, dry_run=True)
    job.status, job.reached = BackfillJob.Status.PAUSED, job.since + timedelta(days=10)
    # Paused after the window holding the first return (3 weeks ago) was committed.
    job.committed_counts = job.counts = {"found": 1, "would_import": 1, "would_adopt": 1}
    job.save()
    backfill.run_backfill(job.pk)
    job.refresh_from_db()
    assert job.counts["found"] == 3 and job.status == BackfillJob.Status.SUCCEEDED


def test_a_date_in_the_future_is_refused(world: World):
    with pytest.raises(ValueError, match="future"):
        backfill.request_backfill(
            world.connection, timezone.now() + timedelta(days=1), dry_run=True
        )
    assert not BackfillJob.objects.exists()


def test_command_prints_progress_and_the_plan(world: World, history):
    out = io.StringIO()
    since = _since().date().isoformat()
    call_command(
        "connector_backfill", world.connection.name, "--since", since, "--dry-run", stdout=out
    )
    text = out.getvalue()
    assert "read up to" in text and "would create a sales credit" in text
    assert "Dry run finished (nothing written)" in text
    assert not Rma.objects.filter(connection=world.connection).exists()


def test_admin_action_queues_the_job_on_the_bulk_queue(
    world: World, history, eager, django_capture_on_commit_callbacks
):
    from tests.connector.admin_roles import client_for, staff_user

    assert queues.route_task("connector.tasks.run_backfill", (), {}, {}) == {
        "queue": queues.queue_name(queues.BULK)
    }
    client = client_for(staff_user("operate"))
    url = reverse("admin:connector_connection_changelist")
    form = {"action": "backfill_returns", "_selected_action": [world.connection.pk]}
    asked = client.post(url, form)
    assert b'name="since"' in asked.content
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            url, {**form, "apply": "1", "since": _since().date().isoformat(), "dry_run": "1"}
        )
    job = BackfillJob.objects.get()
    assert (job.dry_run, job.status, job.counts["found"]) == (True, "succeeded", 3)
    page = client.get(reverse("admin:connector_backfilljob_change", args=[job.pk]))
    assert b"would adopt sales credit" in page.content and b"100%" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:connector_backfilljob_changelist"),
            {"action": "run_for_real", "_selected_action": [job.pk]},
        )
    real = BackfillJob.objects.get(dry_run=False)
    assert real.status == "succeeded" and real.counts["credits_adopted"] == 1


def test_returngo_returns_are_listed_by_creation_date(rg_world: World):
    """ReturnGO's `rma_created_at` filter: returns created before the date are left alone,
    the listing stops at the end of the window, and each due return gets its credit."""
    rg, now = rg_world.returngo, timezone.now()
    numbers = {}
    for label, days_ago in (("before", 40), ("inside", 20), ("inside too", 10)):
        sale = rg_world.sale([("HAT-1", 1, "20.00", "4.00")])
        record = rg.add_rma(
            items=[{"sku": "HAT-1", "price": "20.00", "tax": "4.00"}],
            order_name=sale.order_name,
            order_id=sale.shop_order_id,
            currency="GBP",
            created_at=now - timedelta(days=days_ago),
            fire=False,
        )
        numbers[label] = record["rmaSummary"]["rmaId"]
    job = _run(rg_world, dry_run=False)
    assert job.counts == {"found": 2, "imported": 2, "credits_created": 2}
    stored = set(
        Rma.objects.filter(connection=rg_world.connection).values_list("external_id", flat=True)
    )
    assert stored == {numbers["inside"], numbers["inside too"]}


def test_a_job_held_by_a_live_execution_is_not_run_twice_but_one_lost_is_resumed(
    world: World, history
):
    job = backfill.request_backfill(world.connection, _since(), dry_run=True)
    BackfillJob.objects.filter(pk=job.pk).update(
        status=BackfillJob.Status.RUNNING, heartbeat_at=timezone.now()
    )
    held = backfill.run_backfill(job.pk)
    assert held.job is None and 0 < held.retry_after <= backfill.STALE.total_seconds() + 1
    assert BackfillJob.objects.get(pk=job.pk).counts == {}
    BackfillJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - backfill.STALE - timedelta(seconds=1)
    )
    resumed = backfill.run_backfill(job.pk)
    assert resumed.job.status == BackfillJob.Status.SUCCEEDED
    assert resumed.job.counts["found"] == 3


def test_a_sync_that_starts_mid_backfill_leaves_the_backfill_s_run_running(world: World, history):
    """A backfill holds no run lease, so a sync of the same connection may start while it
    runs: the sync must not close the backfill's run row as interrupted (the sync log would
    show a live backfill as failed until it ends)."""
    seen = {}

    def sync_once_mid_way(job: BackfillJob) -> None:
        if seen:
            return
        seen["sync"] = world.sync()
        seen["backfill run"] = SyncRun.objects.exclude(pk=seen["sync"].pk).get()

    job = _run(world, dry_run=False, on_progress=sync_once_mid_way)
    assert seen["sync"].status == SyncRun.Status.SUCCEEDED
    mid_way = seen["backfill run"]
    assert (mid_way.status, mid_way.message) == (
        SyncRun.Status.RUNNING,
        f"Backfill of returns created from {job.since:%Y-%m-%d} (job {job.pk}).",
    )
    assert mid_way.heartbeat_at is not None  # alive: the dispatcher can tell when it is not
    assert job.status == BackfillJob.Status.SUCCEEDED
    mid_way.refresh_from_db()
    assert mid_way.status == SyncRun.Status.SUCCEEDED


def test_a_sync_closes_the_run_of_a_backfill_whose_worker_was_lost(world: World):
    """Its job still says running, but neither the job nor its run row has beaten for long:
    the next sync of the connection closes the row as interrupted."""
    lost = timezone.now() - backfill.STALE - timedelta(minutes=1)
    job = BackfillJob.objects.create(
        connection=world.connection,
        since=_since(),
        until=timezone.now(),
        dry_run=False,
        status=BackfillJob.Status.RUNNING,
        heartbeat_at=lost,
    )
    orphan = SyncRun.objects.create(
        connection=world.connection,
        trigger=SyncRun.Trigger.COMMAND,
        backfill_job=job,
        heartbeat_at=lost,
    )
    assert world.sync().status == SyncRun.Status.SUCCEEDED
    orphan.refresh_from_db()
    assert orphan.status == SyncRun.Status.FAILED
    assert orphan.message.startswith("Interrupted")
