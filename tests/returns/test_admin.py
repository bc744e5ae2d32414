"""The RMA admin: read-only, filterable, searchable by RMA number, order name and SKU."""

import pytest
from django.urls import reverse

from returns.models import Rma

from .factories import RefundFactory, RmaFactory, RmaLineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rma(connection):
    rma = RmaFactory(
        connection=connection,
        rma_number="R-778",
        order_name="#4455",
        flagged=True,
        flag_reason="Short by one",
    )
    RmaLineFactory(rma=rma, sku="BOOT-42", quantity=2, quantity_received=2, quantity_restocked=1)
    RefundFactory(rma=rma, external_id="rf-admin-1")
    RmaFactory(connection=connection, rma_number="R-999", order_name="#9999")
    return rma


CHANGELIST = reverse("admin:returns_rma_changelist")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "R-778"}, "R-778"),
        ({"q": "#4455"}, "R-778"),
        ({"q": "BOOT-42"}, "R-778"),
        ({"flagged__exact": "1"}, "R-778"),
        ({"status__exact": "approved"}, "R-999"),
        ({"platform__exact": "loop"}, "R-999"),
    ],
)
def test_changelist_filters_and_search(admin_client, rma, query, expected):
    response = admin_client.get(CHANGELIST, query)
    assert response.status_code == 200
    assert expected in response.content.decode()


def test_changelist_filters_by_connection_and_date(admin_client, rma):
    year = str(rma.created_at.year)
    response = admin_client.get(
        CHANGELIST, {"connection__id__exact": rma.connection_id, "created_at__year": year}
    )
    assert response.status_code == 200
    assert response.context["cl"].show_full_result_count is False


def test_change_page_is_read_only_with_inlines(admin_client, rma):
    response = admin_client.get(reverse("admin:returns_rma_change", args=[rma.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "BOOT-42" in page and "rf-admin-1" in page
    assert "Quantity received" in page and "Quantity restocked" in page
    assert 'name="_save"' not in page
    assert admin_client.get(reverse("admin:returns_rma_add")).status_code == 403
    assert admin_client.post(reverse("admin:returns_rma_delete", args=[rma.pk])).status_code == 403
    assert Rma.objects.filter(pk=rma.pk).exists()
