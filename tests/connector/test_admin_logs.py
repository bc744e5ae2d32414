"""Staff find what happened: sync log pages filter and search to the right rows."""

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.models import SyncEvent, SyncRun

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


def test_retry_action_requeues_failed_items(admin_client, logs, django_capture_on_commit_callbacks):
    from returns.models import Rma

    rma = Rma.objects.create(
        connection=logs["shop_a"],
        platform="loop",
        external_id="R-100",
        status="approved",
        flagged=True,
        flag_reason="SKU X is not on …",
    )
    logs["credit_a"].rma = rma
    logs["credit_a"].save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            URL, {"action": "retry_selected", "_selected_action": [logs["credit_a"].pk]}
        )
    assert response.status_code == 302
    rma.refresh_from_db()
    assert not rma.flagged
    assert len(callbacks) == 1  # one sync queued for the connection, after commit
