"""Real Celery workers on Redis run the sync: results, and crash safety under SIGKILL."""

import os
import signal
import time
from datetime import UTC, datetime

import pytest

from connector.models import BindingState, SalesCredit, SyncRun
from connector.tasks import sync_connection
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow


def approved_return(world):
    sku = f"KETTLE-{world.bp.code}"
    sale = world.sale([(sku, 1, "30.00", "6.00")])
    world.loop_return(sale, [{"sku": sku}])
    return sale


def test_real_worker_runs_the_sync_and_records_the_run(world, celery_worker):
    celery_worker()
    sale = approved_return(world)
    sync_connection.delay(world.connection.pk, trigger=SyncRun.Trigger.ADMIN)
    run = wait_until(
        lambda: (
            SyncRun.objects.filter(connection=world.connection)
            .exclude(status=SyncRun.Status.RUNNING)
            .first()
        ),
        timeout=30,
    )
    assert run.trigger == SyncRun.Trigger.ADMIN
    assert run.status == SyncRun.Status.SUCCEEDED, run.message
    assert run.brightpearl_requests > 0
    assert [c["parentOrderId"] for c in world.credits()] == [sale.order_id]


def test_worker_killed_mid_post_is_redelivered_and_creates_no_duplicate(world, celery_worker):
    worker = celery_worker(CREDIT_ATTEMPT_LEASE_SECONDS=3)
    sale = approved_return(world)
    # The credit POST takes 2 s at Brightpearl, and is written even though its caller dies.
    world.bp.control.add_fault(
        r"^/order-service/sales-credit/?$", "delay", method="POST", seconds=2, times=1
    )
    sync_connection.delay(world.connection.pk)

    claimed = wait_until(
        lambda: SalesCredit.objects.filter(
            state=BindingState.ATTEMPTING, attempt_started_at__isnull=False
        ).first(),
        timeout=30,
        interval=0.02,
    )
    time.sleep(0.5)  # the POST goes out right after the claim; it takes 2 s to answer
    [child] = worker.children()
    killed_at = datetime.now(UTC)
    os.kill(child, signal.SIGKILL)

    binding = wait_until(
        lambda: SalesCredit.objects.filter(state=BindingState.CREATED).first(), timeout=40
    )
    posts = [
        r
        for r in world.bp.control.requests()
        if r["method"] == "POST" and r["path"].rstrip("/").endswith("/sales-credit")
    ]
    # Exactly one POST ever reached Brightpearl: the killed worker's. It finished after the
    # kill (the sandbox logs a request when it answers), so it was in flight when the worker
    # died; the redelivered task waited for it and adopted the credit instead of posting.
    assert len(posts) == 1
    assert datetime.fromisoformat(posts[0]["at"].replace("Z", "+00:00")) > killed_at
    assert claimed.attempt_started_at < killed_at
    assert [c["parentOrderId"] for c in world.credits()] == [sale.order_id]
    assert binding.credit_id == world.credits()[0]["id"]
    assert binding.adopted
    assert "WorkerLostError" in worker.output() or "SIGKILL" in worker.output()
    # Every run ended in a recorded state, none left running.
    wait_until(
        lambda: not SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exists(), timeout=20
    )
