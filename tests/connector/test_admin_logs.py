"""Staff find what happened: sync log pages filter and search to the right rows."""

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.models import SalesCredit, SyncEvent, SyncRun

from .factories import ConnectionFactory

pytestmark = pytest.mark.django_db

URL = reverse("admin:connector_syncevent_changelist")


@pytest.fixture
def logs():
    shop_a, shop_b = ConnectionFactory(name="Shop A"), ConnectionFactory(name="Shop B")
    ok_run = SyncRun.objects.create(connection=shop_a, status=SyncRun.Status.SUCCEEDED)
    bad_run = SyncRun.objects.create(connection=shop_b, status=SyncRun.Status.PARTIAL)

    def event(run, kind, outcome, rma, order, credit=None):
        return SyncEvent.objects.create(
            run=run,
            connection=run.connection,
            kind=kind,
            outcome=outcome,
            rma_number=rma,
            order_number=order,
            credit_id=credit,
            message=f"{kind} {outcome} {rma}",
        )

    return {
        "credit_a": event(ok_run, "credit", "succeeded", "R-100", "#1001", 501),
        "refund_a": event(ok_run, "refund", "succeeded", "R-100", "#1001", 501),
        "credit_b": event(bad_run, "credit", "failed", "R-200", "#2002"),
        "flag_b": event(bad_run, "flag", "flagged", "R-201", "#2003", 777),
        "shop_a": shop_a,
    }


def shown(client, **params) -> set[int]:
    response = client.get(URL, params)
    assert response.status_code == 200
    return {e.pk for e in response.context["cl"].result_list}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind__exact": "credit"}, {"credit_a", "credit_b"}),
        ({"outcome__exact": "failed"}, {"credit_b"}),
        ({"outcome__exact": "flagged"}, {"flag_b"}),
        ({"run__status__exact": "partial"}, {"credit_b", "flag_b"}),
        ({"q": "#1001"}, {"credit_a", "refund_a"}),
        ({"q": "2002"}, {"credit_b"}),  # order number without the '#'
        ({"q": "r-201"}, {"flag_b"}),  # RMA number, any case
        ({"q": "777"}, {"flag_b"}),  # sales-credit ID
        ({"q": "501"}, {"credit_a", "refund_a"}),
        ({"q": "nothing-like-this"}, set()),
    ],
)
def test_filters_and_search_return_the_right_rows(admin_client, logs, params, expected):
    assert shown(admin_client, **params) == {logs[name].pk for name in expected}


def test_connection_filter_and_date_hierarchy(admin_client, logs):
    mine = shown(admin_client, connection__id__exact=logs["shop_a"].pk)
    assert mine == {logs["credit_a"].pk, logs["refund_a"].pk}
    today = timezone.now()
    assert len(shown(admin_client, created_at__year=today.year, created_at__month=today.month)) == 4
    assert shown(admin_client, created_at__year=today.year - 1) == set()


def test_run_log_filters_by_status(admin_client, logs):
    url = reverse("admin:connector_syncrun_changelist")
    response = admin_client.get(url, {"status__exact": "partial"})
    assert [r.status for r in response.context["cl"].result_list] == ["partial"]


def _flagged_rma(logs, reason, *, from_planning):
    from returns.models import Rma

    rma = Rma.objects.create(
        connection=logs["shop_a"],
        platform="loop",
        external_id="R-100",
        rma_number="R-100",
        status="flagged",
        furthest_status="approved",
        flagged=True,
        flag_reason=reason,
    )
    if from_planning:  # the credit step blocked the credit with this reason
        SalesCredit.objects.create(
            connection=logs["shop_a"],
            account_key=logs["shop_a"].brightpearl_account_key,
            rma=rma,
            external_ref="rbc:test:R-100",
            state="blocked",
            last_error=reason,
        )
    logs["credit_a"].rma = rma
    logs["credit_a"].save()
    return rma


def _post_action(admin_client, logs, action):
    from django.contrib.messages import get_messages

    response = admin_client.post(
        URL, {"action": action, "_selected_action": [logs["credit_a"].pk]}, follow=True
    )
    assert response.status_code == 200
    return [str(m) for m in get_messages(response.wsgi_request)] or [
        str(m) for m in response.context["messages"]
    ]


def test_retry_re_checks_a_flag_the_credit_step_raised(
    admin_client, logs, django_capture_on_commit_callbacks
):
    rma = _flagged_rma(logs, "SKU X is not on original order 102.", from_planning=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        said = _post_action(admin_client, logs, "retry_selected")
    rma.refresh_from_db()
    assert rma.flagged  # until the next run's re-check says otherwise
    assert SalesCredit.objects.get(rma=rma).state == "pending"
    assert len(callbacks) == 1  # one sync queued for the connection, after commit
    assert any("R-100: sales credit (its flag is re-checked)" in m for m in said), said
    retry = SyncEvent.objects.get(kind="retry", rma=rma)
    assert "admin" in retry.message


def test_retry_keeps_a_flag_nobody_resolved(admin_client, logs, django_capture_on_commit_callbacks):
    rma = _flagged_rma(logs, "Checked by hand: parcel damaged", from_planning=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        said = _post_action(admin_client, logs, "retry_selected")
    rma.refresh_from_db()
    assert rma.flagged and rma.flag_reason == "Checked by hand: parcel damaged"
    assert callbacks == []
    assert any("still flagged (Checked by hand: parcel damaged)" in m for m in said), said
    assert not SyncEvent.objects.filter(kind="retry").exists()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        said = _post_action(admin_client, logs, "clear_flag_and_retry")
    rma.refresh_from_db()
    assert not rma.flagged
    assert len(callbacks) == 1
    assert any("flag cleared (Checked by hand: parcel damaged)" in m for m in said), said


def test_run_sync_now_on_runs_queues_one_sync_per_connection_and_says_so(
    admin_client, logs, django_capture_on_commit_callbacks
):
    """Clicked twice on runs of two shops: two syncs queued (after commit), then none — the
    second click is told both are already waiting (tests/connector/test_coalesce.py counts
    the tasks in a real broker)."""
    runs = reverse("admin:connector_syncrun_changelist")
    selected = list(SyncRun.objects.values_list("pk", flat=True))

    def click() -> tuple[list[str], int]:
        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = admin_client.post(
                runs, {"action": "run_sync_now", "_selected_action": selected}, follow=True
            )
        assert response.status_code == 200
        return [str(m) for m in response.context["messages"]], len(queued)

    assert click() == (["Sync queued for Shop A, Shop B."], 2)
    [said], queued = click()
    assert queued == 0
    assert said.startswith("A sync was already queued for Shop A, Shop B: not queued again")
