"""ReturnGO's daily budget and its webhooks: a shipment event (ours when the connector moves a
shipment to Received, or a carrier's tracking update) is stored and ignored without spending a
`GET /rma/{id}`; an RMA event is still re-fetched and acted on."""

import pytest
from django.test import Client

from connector.models import WebhookEvent
from returns.models import Rma

pytestmark = pytest.mark.django_db


def deliver(rg_world, number, event_name, capture):
    connection = rg_world.connection
    body = rg_world.returngo.webhook_body(number, event_name)
    with capture(execute=True):
        response = Client().post(
            f"/webhooks/returngo/{connection.pk}/{connection.webhook_secret}/",
            data=body,
            content_type="application/json",
        )
    assert response.status_code == 202
    return WebhookEvent.objects.get(event=event_name)


def detail_reads(rg_world, start):
    return sum(
        1
        for method, path in rg_world.returngo.requests_seen[start:]
        if method == "GET" and path.startswith("/rma/")
    )


def test_shipment_events_cost_no_call_rma_events_are_re_fetched(
    rg_world, eager, django_capture_on_commit_callbacks
):
    rg = rg_world.returngo
    number = rg.add_rma(items=[{"sku": "LAMP"}], fire=False)["rmaSummary"]["rmaId"]
    start = len(rg.requests_seen)

    for name in ("SHIPMENT_STATUS_UPDATED", "SHIPMENT_TRACKER_STATUS_UPDATED"):
        event = deliver(rg_world, number, name, django_capture_on_commit_callbacks)
        assert event.status == WebhookEvent.Status.IGNORED, event.error
        assert "not re-fetched" in event.error  # the reason, for staff
    assert detail_reads(rg_world, start) == 0
    assert not Rma.objects.filter(external_id=str(number)).exists()

    event = deliver(rg_world, number, "RMA_STATUS_UPDATED", django_capture_on_commit_callbacks)
    assert event.status == WebhookEvent.Status.PROCESSED, event.error
    assert detail_reads(rg_world, start) == 1
    assert Rma.objects.filter(external_id=str(number)).exists()
