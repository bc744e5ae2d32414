"""Texts stored before errors were redacted at the source can be scrubbed in place."""

import io

import pytest
from django.core.management import call_command

from connector.models import Problem, SyncEvent, SyncRun, WebhookEvent

from .factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def test_scrub_masks_stored_secrets_and_leaves_everything_else(db):
    connection = ConnectionFactory(brightpearl_account_token="SEKRET-ACCT-TOKEN-111-abcdef")
    token, key = connection.brightpearl_account_token, connection.platform_api_key
    connection.last_check_report = [
        {"field": "credentials", "ok": False, "message": f"refused header {token}"}
    ]
    connection.save()
    run = SyncRun.objects.create(connection=connection, message=f"failed: X-Authorization: {key}")
    event = SyncEvent.objects.create(
        run=run,
        connection=connection,
        kind=SyncEvent.Kind.CREDIT,
        outcome=SyncEvent.Outcome.FAILED,
        message=f"Brightpearl said brightpearl-account-token={token}",
    )
    hook = WebhookEvent.objects.create(
        connection=connection, source="brightpearl", body=f"raw {token}", error="ok text"
    )

    out = io.StringIO()
    call_command("connector_scrub_secrets", "--dry-run", stdout=out)
    # The report, the run, the event and the open problem the failed event opened (its copy of
    # the message).
    assert "would mask secrets in 4 stored record(s)" in out.getvalue()
    event.refresh_from_db()
    assert token in event.message  # dry run: nothing changed

    call_command("connector_scrub_secrets", stdout=out)
    connection.refresh_from_db()
    run.refresh_from_db()
    event.refresh_from_db()
    hook.refresh_from_db()
    assert token not in str(connection.last_check_report)
    assert "refused header" in connection.last_check_report[0]["message"]
    assert key not in run.message and run.message.startswith("failed: X-Authorization:")
    assert token not in event.message and "Brightpearl said" in event.message
    problem = Problem.objects.get(connection=connection)
    assert token not in problem.message and "Brightpearl said" in problem.message
    assert hook.body == f"raw {token}"  # raw inbound bodies are kept as received
    assert hook.error == "ok text"
    assert connection.brightpearl_account_token == token  # the secret itself is untouched
