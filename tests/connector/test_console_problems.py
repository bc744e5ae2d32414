"""Open problems, not a log: a failure stays open until the same item succeeds later or staff
dismiss it with a note; the default list shows open ones only, each with what to do; a retry
names what it queued and shows what came of it. Real syncs against the sandboxes."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from connector.models import Problem, SyncRun
from connector.services.problems import advice
from returns.models import Rma

pytestmark = pytest.mark.django_db

CREDIT_POST = r"^/order-service/sales-credit/?$"
URL = reverse("admin:connector_problem_changelist")


def approved_return(world, prefix="ITEM", extra_lines=()):
    sku = f"{prefix}-{world.bp.code}"
    sale = world.sale([(sku, 2, "20.00", "4.00")])
    loop_return = world.loop_return(sale, [{"sku": sku, "quantity": 2}, *extra_lines])
    return sale, loop_return


def listed(client, **params) -> list[Problem]:
    response = client.get(URL, params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def post_action(client, action, problems, **extra) -> list[str]:
    response = client.post(
        URL,
        {"action": action, "_selected_action": [p.pk for p in problems], **extra},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in get_messages(response.wsgi_request)] or [
        str(m) for m in response.context["messages"]
    ]


def test_a_refused_credit_stays_open_until_a_retry_makes_it_then_leaves_the_list(
    world, admin_client, eager, django_capture_on_commit_callbacks
):
    approved_return(world)
    world.bp.control.add_fault(CREDIT_POST, "error", method="POST", status=400, times=2)
    world.sync()
    [problem] = listed(admin_client)
    rma = Rma.objects.get()
    assert (problem.rma_id, problem.kind, problem.outcome) == (rma.pk, "credit", "failed")
    page = admin_client.get(URL).content.decode()
    assert "Brightpearl would not accept the sales credit" in page  # what to do, in words
    assert "console-red" in page  # a failed row looks failed

    # Retried while the cause is still there: refused again — the same problem, seen twice.
    with django_capture_on_commit_callbacks(execute=True):
        said = post_action(admin_client, "retry_selected", [problem])
    assert any(f"RMA {rma.rma_number}: sales credit" in m for m in said), said
    [problem] = listed(admin_client)
    assert problem.occurrences == 2
    assert "<strong>failed again</strong>" in admin_client.get(URL).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        post_action(admin_client, "retry_selected", [problem])
    problem.refresh_from_db()
    assert problem.state == Problem.State.RESOLVED
    assert problem.resolution.startswith("Sales credit succeeded: Created sales credit")
    assert listed(admin_client) == []  # the default view: open problems only
    [closed] = listed(admin_client, state="resolved")
    page = admin_client.get(URL, {"state": "resolved"}).content.decode()
    assert "Retry requested by admin: sales credit." in page
    assert "<strong>succeeded</strong>" in page  # the retry's outcome, on the problem


def test_a_flag_is_dismissed_only_with_a_note(world, admin_client):
    approved_return(world, "COAT", extra_lines=[{"sku": "NOT-SOLD-HERE"}])
    world.sync()
    [problem] = listed(admin_client)
    assert problem.outcome == "flagged" and "not on original order" in problem.message
    page = admin_client.get(URL).content.decode()
    assert "not on their order" in page and "console-amber" in page

    said = post_action(admin_client, "dismiss_with_note", [problem], note="  ")
    assert any("a note is required" in m for m in said), said
    problem.refresh_from_db()
    assert problem.state == Problem.State.OPEN

    post_action(admin_client, "dismiss_with_note", [problem], note="Customer kept the item")
    problem.refresh_from_db()
    assert (problem.state, problem.closed_by, problem.resolution) == (
        Problem.State.DISMISSED,
        "admin",
        "Customer kept the item",
    )
    assert listed(admin_client) == []
    assert listed(admin_client, state="dismissed") == [problem]


def test_a_run_refused_by_brightpearl_is_one_problem_that_the_next_good_run_closes(world):
    approved_return(world)
    token = world.connection.brightpearl_account_token
    world.connection.brightpearl_account_token = "wrong-token"
    world.connection.save()
    assert world.sync().status == SyncRun.Status.FAILED
    [problem] = Problem.objects.filter(state=Problem.State.OPEN)
    assert problem.kind == "run" and problem.rma_id is None
    assert "cannot log in to Brightpearl" in advice(problem)

    world.connection.brightpearl_account_token = token
    world.connection.save()
    assert world.sync().status == SyncRun.Status.SUCCEEDED
    problem.refresh_from_db()
    assert problem.state == Problem.State.RESOLVED
    assert not Problem.objects.filter(state=Problem.State.OPEN).exists()
