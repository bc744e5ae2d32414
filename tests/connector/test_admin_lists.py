"""Honest lists: a flagged return reads as flagged (amber, with its reason), a run that flagged
an item reads "Partly failed" with what happened in words, empty runs stay out of the way,
money has two decimals and its currency, and records the connector writes cannot be added,
changed or deleted by anyone."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from connector.models import RefundPayment, SalesCredit, SyncRun

from .admin_roles import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def flagged_and_refunded(world):
    """Two returns through real syncs: one flagged (an item never sold on the order), one
    credited, received, processed and refunded."""
    sku = "KETTLE-" + world.bp.code
    good = world.sale([(sku, 1, "20.00", "4.00")])
    world.loop_return(good, [{"sku": sku}])
    odd = world.sale([(sku, 1, "20.00", "4.00")])
    world.loop_return(odd, [{"sku": "NEVER-SOLD-" + world.bp.code}])
    first_run = world.sync()
    credit = SalesCredit.objects.get(connection=world.connection, credit_id__isnull=False)
    world.bp.control.receive(credit.credit_id)
    world.sync()
    world.sync()
    return world, first_run, credit


def row_of(html: str, text: str) -> str:
    [row] = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if text in r]
    return row


def test_a_flagged_return_reads_flagged_in_amber_with_its_reason(
    admin_client, flagged_and_refunded
):
    world, _, credit = flagged_and_refunded
    html = admin_client.get(reverse("admin:returns_rma_changelist")).content.decode()
    flagged = row_of(html, "status-warn")
    assert "Flagged" in flagged and "is not on original order" in flagged
    assert "icon-yes" not in flagged  # never a green tick for a return that needs a person
    done = row_of(html, f"Sales credit {credit.credit_id}")
    payment = RefundPayment.objects.get(sales_credit=credit)
    assert f"Payment {payment.payment_id}" in done
    assert f"Order {credit.parent_order_id} in Brightpearl" in done
    assert re.search(r"\d+\.\d\d GBP", done) and ".0000" not in done


def test_a_run_that_flagged_an_item_is_partly_failed_and_says_what_happened(
    admin_client, flagged_and_refunded
):
    _, first_run, _ = flagged_and_refunded
    first_run.refresh_from_db()
    assert first_run.status == SyncRun.Status.PARTIAL
    assert re.search(r"\d+ item\(s\) flagged; see the events", first_run.message)
    html = admin_client.get(reverse("admin:connector_syncrun_changelist")).content.decode()
    row = row_of(html, f"run__id__exact={first_run.pk}")
    assert "Partly failed" in row and "console-amber" in row  # amber: needs a person
    assert "1 sales credit: flagged" in row and "1 sales credit: done" in row


def test_empty_runs_are_hidden_until_asked_for(admin_client, world):
    empty = SyncRun.objects.create(
        connection=world.connection, status=SyncRun.Status.SUCCEEDED, counts={"pulled": 0}
    )
    url = reverse("admin:connector_syncrun_changelist")
    assert f"run__id__exact={empty.pk}" not in admin_client.get(url).content.decode()
    html = admin_client.get(url, {"activity": "all"}).content.decode()
    assert f"run__id__exact={empty.pk}" in html and "nothing to do" in html


def test_a_credit_page_reads_as_a_title_a_rows_table_and_words(admin_client, flagged_and_refunded):
    _, _, credit = flagged_and_refunded
    html = admin_client.get(
        reverse("admin:connector_salescredit_change", args=[credit.pk])
    ).content.decode()
    title = (
        f"Sales credit {credit.credit_id} for {credit.rma.rma_number} (order {credit.order_number})"
    )
    assert title in html
    assert "<th>units</th>" in html and "20.00 GBP" in html
    assert "goods are received by the warehouse in Brightpearl" in html
    assert "deletelink" not in html  # no Delete button, even for a superuser


def test_nobody_deletes_logs_or_bindings_and_beat_is_for_superusers_only(admin_client, world):
    run = SyncRun.objects.create(connection=world.connection, status=SyncRun.Status.FAILED)
    assert (
        admin_client.get(reverse("admin:connector_syncrun_delete", args=[run.pk])).status_code
        == 403
    )
    staff = get_user_model().objects.create_user("beat-viewer", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="django_celery_beat")
    )
    client = client_for(staff)
    assert (
        client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code == 403
    )
    assert "Periodic tasks" not in client.get(reverse("admin:index")).content.decode()
    assert (
        admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code
        == 200
    )


def test_a_refunded_return_says_when_and_how_much(admin_client, flagged_and_refunded):
    _, _, credit = flagged_and_refunded
    html = admin_client.get(
        reverse("admin:returns_rma_change", args=[credit.rma_id])
    ).content.decode()
    refund = credit.rma.refunds.get()
    # The refund's row in the refunds inline (the timeline lists it too) gives its time.
    rows = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if refund.external_id in r]
    assert any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r) for r in rows), rows
    assert f"{refund.amount:.2f} {refund.currency}" in html and ".0000" not in html
