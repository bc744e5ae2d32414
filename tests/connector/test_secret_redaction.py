"""Secrets never leave through errors: with Brightpearl and the returns platform both replaced
by a server that echoes every request's headers back in its error bodies, nothing the connector
writes — `connector_check` output, the stored check report, sync runs and events, log records —
contains a credential, for every Brightpearl auth mode."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.management import CommandError, call_command

from connector.models import Connection, SyncEvent, SyncRun
from connector.services.sync import run_sync
from tests.echo_server import EchoServer

pytestmark = pytest.mark.django_db

SECRETS = {
    "brightpearl_account_token": "SEKRET-ACCT-TOKEN-111-abcdef",
    "brightpearl_staff_token": "SEKRET-STAFF-TOKEN-222-abcdef",
    "brightpearl_client_secret": "SEKRET-CLIENT-SECRET-555-abcdef",
    "brightpearl_access_token": "SEKRET-ACCESS-TOKEN-333-abcdef",
    "brightpearl_refresh_token": "SEKRET-REFRESH-TOKEN-444-abcdef",
    "platform_api_key": "SEKRET-PLATFORM-KEY-666-abcdef",
    "platform_webhook_secret": "SEKRET-LOOP-SIGNING-777-abcdef",
}


@pytest.fixture
def echo(settings):
    server = EchoServer(401, "brightpearl", prefix="Authorization token expired: ").start()
    settings.BRIGHTPEARL_API_URL = server.url + "/public-api/{account}"
    settings.BRIGHTPEARL_OAUTH_TOKEN_URL = server.url + "/oauth/token/{account}"
    yield server
    server.stop()


def make_connection(echo, mode: str, platform: str) -> Connection:
    return Connection.objects.create(
        name=f"Echo {mode} {platform}",
        brightpearl_account="echo",
        brightpearl_app_ref="echo_app",
        brightpearl_dev_ref="devref",
        brightpearl_auth_mode=mode,
        platform=platform,
        platform_shop_name="echo.myshopify.com",
        platform_api_url=echo.url,
        refund_method_code="1200",
        **SECRETS,
    )


def assert_clean(text: str, echo: EchoServer, where: str) -> None:
    sent = json.dumps(echo.requests)
    for name, secret in SECRETS.items():
        assert secret not in text, f"{where} carries {name}"
    assert any(s in sent for s in SECRETS.values()), "credentials must have been sent"


@pytest.mark.parametrize("mode", ["private_account", "private_staff", "oauth"])
def test_connector_check_output_and_stored_report_carry_no_secret(echo, mode, caplog):
    connection = make_connection(echo, mode, "loop")
    out, err = io.StringIO(), io.StringIO()
    with caplog.at_level(logging.DEBUG), pytest.raises(CommandError):
        call_command("connector_check", connection.name, stdout=out, stderr=err)
    connection.refresh_from_db()
    assert connection.last_check_ok is False
    assert "ECHO-001" in out.getvalue() or "refused" in out.getvalue()
    assert_clean(out.getvalue() + err.getvalue(), echo, "connector_check output")
    assert_clean(json.dumps(connection.last_check_report), echo, "stored check report")
    assert_clean(caplog.text, echo, "log records")


@pytest.mark.parametrize("platform", ["loop", "returngo"])
@pytest.mark.parametrize("mode", ["private_account", "oauth"])
def test_sync_runs_and_events_carry_no_secret(echo, mode, platform, caplog):
    echo.style = "platform"  # both Brightpearl and the platform answer with echoes
    connection = make_connection(echo, mode, platform)
    with caplog.at_level(logging.DEBUG):
        run = run_sync(connection, trigger=SyncRun.Trigger.COMMAND).run
    texts = [run.message, *SyncEvent.objects.values_list("message", flat=True)]
    assert run.status in (SyncRun.Status.FAILED, SyncRun.Status.PARTIAL), run.message
    assert any(texts), "the failures must have been recorded"
    assert_clean("\n".join(texts), echo, "sync run/events")
    assert_clean(caplog.text, echo, "log records")
