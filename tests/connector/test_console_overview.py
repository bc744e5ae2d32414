"""The overview on the admin index: per connection, health and the counts of what needs staff,
each linking to the list it counts; small server-drawn charts. Built by real syncs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connector.models import Connection

from .admin_roles import client_for, staff_user

pytestmark = pytest.mark.django_db

CREDIT_POST = r"^/order-service/sales-credit/?$"


def returns_in_every_state(world) -> None:
    """One return processed and refunded, one credited awaiting goods, one flagged, one whose
    credit Brightpearl refused."""
    sku = "SHIRT-" + world.bp.code
    done = world.sale([(sku, 1, "20.00", "4.00")])
    world.loop_return(done, [{"sku": sku}])
    world.sync()
    credit_id = world.connection.sales_credits.get().credit_id
    world.bp.control.receive(credit_id)
    world.sync()
    world.sync()  # the refund Loop made on processing is recorded
    waiting = world.sale([(sku, 1, "20.00", "4.00")])
    world.loop_return(waiting, [{"sku": sku}])
    flagged = world.sale([(sku, 1, "20.00", "4.00")])
    world.loop_return(flagged, [{"sku": sku}, {"sku": "NOT-SOLD-HERE"}])
    world.sync()
    refused = world.sale([(sku, 1, "20.00", "4.00")])
    world.loop_return(refused, [{"sku": sku}])
    world.bp.control.add_fault(CREDIT_POST, "error", method="POST", status=400, times=1)
    world.sync()


def tiles_of(response, connection: Connection) -> dict:
    [view] = [v for v, _, _ in response.context["overview"] if v.connection == connection]
    return {tile.label: tile for tile in view.tiles}


def test_the_counts_are_right_and_each_opens_the_list_it_counts(world, admin_client):
    returns_in_every_state(world)
    response = admin_client.get(reverse("admin:index"))
    tiles = tiles_of(response, world.connection)
    expected = {
        "Waiting for a credit": 1,  # the refused one: still waiting, and a failure too
        "Credited, awaiting goods": 1,
        "Partly received": 0,
        "Flagged (needs staff)": 1,
        "Failed (open problems)": 1,
        "Processed today": 1,
        "Processed this week": 1,
        "Refunded today": 1,
        "Refunded this week": 1,
    }
    assert {label: tiles[label].value for label in expected} == expected
    for label in ("Credited, awaiting goods", "Flagged (needs staff)", "Failed (open problems)"):
        listed = admin_client.get(tiles[label].url).context["cl"].result_list
        assert len(listed) == tiles[label].value, label
    processed = admin_client.get(tiles["Processed today"].url).context["cl"].result_list
    assert {e.kind for e in processed} == {"process"} and len(processed) == 1

    html = response.content.decode()
    assert "Last sync that got through" in html and "never run" in html  # no check yet
    assert html.count('<svg class="console-svg"') == 2  # returns per day, requests per hour
    assert ": 1 processed</title>" in html and ": 1 flagged</title>" in html


def test_staff_without_rights_see_no_overview(world):
    response = client_for(staff_user("none")).get(reverse("admin:index"))
    assert response.status_code == 200
    assert 'id="console-overview"' not in response.content.decode()
    viewer = client_for(staff_user("view")).get(reverse("admin:index")).content.decode()
    assert 'id="console-overview"' in viewer and world.connection.name in viewer
