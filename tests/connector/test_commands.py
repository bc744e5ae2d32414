"""The management commands staff run: check a connection, sync now (or dry-run), prune logs."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from connector.models import SyncRun
from connector.services.logs import prune

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_check_reports_every_setting_against_brightpearl(world):
    world.connection.credit_status_id = 11
    world.connection.credit_channel_id = 1
    world.connection.save()
    world.connection.warehouse_mappings.create(destination_id="101", warehouse_id=3)
    out = run("connector_check", world.connection.name)
    assert "ok   credentials" in out
    assert "ok   credit_status_id: Status 11 is the sales-credit status 'Awaiting return'" in out
    assert "ok   credit_channel_id: Channel 'Web store' exists" in out
    assert "ok   warehouse_mapping[101]" in out
    assert "ok   refund_method_code: Bank account 1200 is used by payment method(s) BANK" in out
    world.connection.refresh_from_db()
    assert world.connection.last_check_ok is True


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"credit_status_id": 3}, "credit_status_id", "for SO orders, not sales credits"),
        ({"credit_status_id": 999}, "credit_status_id", "does not exist"),
        ({"credit_channel_id": 55}, "credit_channel_id", "Channel 55 does not exist"),
        ({"refund_method_code": "4000"}, "refund_method_code", "not a bank account"),
        ({"refund_method_code": "9999"}, "refund_method_code", "not a bank account"),
    ],
)
def test_check_names_the_setting_brightpearl_does_not_know(world, changes, field, message):
    for name, value in changes.items():
        setattr(world.connection, name, value)
    world.connection.save()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("connector_check", world.connection.name, stdout=out)
    assert f"FAIL {field}" in out.getvalue()
    assert message in out.getvalue()
    world.connection.refresh_from_db()
    assert world.connection.last_check_ok is False


def test_check_with_wrong_credentials_says_so_and_keeps_the_connection(world):
    world.connection.brightpearl_account_token = "wrong-token"
    world.connection.save()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("connector_check", world.connection.name, stdout=out)
    assert "FAIL credentials: Brightpearl refused the credentials" in out.getvalue()
    assert "wrong-token" not in out.getvalue()


def test_check_of_an_unknown_connection_lists_the_known_ones(world):
    with pytest.raises(CommandError, match="known: Loop shop"):
        run("connector_check", "no such shop")


def test_sync_command_dry_run_then_real(world):
    sku = "TEAPOT-" + world.bp.code
    sale = world.sale([(sku, 1, "30.00", "6.00")])
    world.loop_return(sale, [{"sku": sku}])
    out = run("connector_sync", world.connection.name, "--dry-run")
    assert "would create a credit" in out and "nothing was written" in out
    assert world.credits() == []
    out = run("connector_sync", world.connection.name)
    assert "credit    succeeded" in out
    assert "Brightpearl requests" in out
    assert len(world.credits()) == 1


def test_prune_keeps_failures_longer_than_successes():
    from tests.connector.factories import ConnectionFactory

    connection = ConnectionFactory()
    old = timezone.now() - timedelta(days=30)
    ancient = timezone.now() - timedelta(days=120)
    runs = {
        name: SyncRun.objects.create(connection=connection, status=status)
        for name, status in [
            ("old_ok", "succeeded"),
            ("old_failed", "failed"),
            ("new_ok", "succeeded"),
            ("ancient_failed", "partial"),
        ]
    }
    SyncRun.objects.filter(pk__in=[runs["old_ok"].pk, runs["old_failed"].pk]).update(started_at=old)
    SyncRun.objects.filter(pk=runs["ancient_failed"].pk).update(started_at=ancient)
    prune(keep_days=14, keep_failed_days=90)
    left = set(SyncRun.objects.values_list("pk", flat=True))
    assert left == {runs["old_failed"].pk, runs["new_ok"].pk}


def test_dry_run_prints_each_item_once_says_what_would_happen_and_shows_the_payload_as_json(
    world, caplog
):
    import json
    import re

    sku = "MUG-" + world.bp.code
    sale = world.sale([(sku, 1, "30.00", "6.00")])
    world.loop_return(sale, [{"sku": sku}])
    out = run("connector_sync", world.connection.name, "--dry-run")
    assert "succeeded" not in out  # nothing was written, so nothing "succeeded"
    assert out.count("would be taken in") == 1
    assert out.count("would create a credit") == 1
    payload = json.loads(
        re.search(r"would create a credit on order \d+:\n(\{.*?\n\})", out, re.S)[1]
    )
    assert payload["rows"][0]["net"] == "30.00"
    assert "{'" not in out  # no Python dict
    assert "1 sales credit: planned; 1 intake: would be done" in out.splitlines()[-1]
    # Printed once: the items are not logged a second time (the console shows both).
    assert not [r for r in caplog.records if r.name == "connector.sync"]
