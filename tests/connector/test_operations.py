"""Operations: deployment system checks, /health/, /metrics, logs with context, static files."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import timedelta

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from connector import logging as log_context
from connector.beat import HEARTBEAT_KEY, record_heartbeat
from connector.checks_deployment import public_base_url
from connector.models import Connection, SyncEvent, SyncRun, WebhookEvent


@pytest.fixture(autouse=True)
def _empty_log_context():
    """The log context belongs to a thread: start and end each test without one."""
    log_context.reset()
    yield
    log_context.reset()


# --- system checks ---------------------------------------------------------------------------
PUBLIC = "https://returns.shop.test"


@pytest.mark.parametrize(
    "debug, url, hosts, webhooks, expected",
    [
        # production: mistakes are errors, so `migrate` stops with the reason
        (False, "", ["x"], True, ["connector.E101"]),
        (False, "http://127.0.0.1:8000", ["127.0.0.1"], True, ["connector.E101"]),
        (False, "http://localhost:8000", ["localhost"], True, ["connector.E101"]),
        (False, "http://[::1]:8000", ["[::1]"], True, ["connector.E101"]),
        (
            False,
            "https://connector.example.com",
            ["connector.example.com"],
            True,
            ["connector.E101"],
        ),
        (False, "connector.shop.test", ["connector.shop.test"], True, ["connector.E101"]),
        (False, PUBLIC, ["localhost"], True, ["connector.E102"]),
        (False, PUBLIC, ["returns.shop.test", "localhost"], True, []),
        (False, PUBLIC, [".shop.test"], True, []),
        # polling only: no public address needed
        (False, "", ["localhost"], False, []),
        (False, "http://localhost:8000", ["localhost"], False, []),
        # development: loopback is normal, a missing address is worth a warning
        (True, "http://127.0.0.1:8000", ["127.0.0.1"], True, []),
        (True, "", ["127.0.0.1"], True, ["connector.W101"]),
        (True, PUBLIC, ["127.0.0.1"], True, ["connector.W102"]),
    ],
)
def test_deployment_checks(debug, url, hosts, webhooks, expected):
    with override_settings(
        DEBUG=debug, PUBLIC_BASE_URL=url, ALLOWED_HOSTS=hosts, WEBHOOKS_ENABLED=webhooks
    ):
        problems = public_base_url(None)
    assert [p.id for p in problems] == expected
    for problem in problems:
        assert isinstance(problem, Warning if debug else Error)
        assert problem.hint


@pytest.mark.django_db
def test_migrate_refuses_to_run_with_a_loopback_public_url_in_production(settings):
    from django.core.management.base import SystemCheckError

    settings.DEBUG = False
    settings.SECRET_KEY = "a-real-production-secret-key-" + "x" * 40  # not the demo keys
    settings.SALT_KEY = ["a-real-field-encryption-salt"]
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    # Without Redis (a laptop's `make test`) the broker and budget checks object too: not this
    # test's concern.
    services = ["connector.E103", "connector.E104"]
    settings.SILENCED_SYSTEM_CHECKS = services
    with pytest.raises(SystemCheckError, match="connector.E101"):
        call_command("migrate", "--check", verbosity=0, skip_checks=False)
    settings.SILENCED_SYSTEM_CHECKS = [*services, "connector.E101"]
    call_command("migrate", "--check", verbosity=0, skip_checks=False)


# --- health ----------------------------------------------------------------------------------
def health(client, path="/health/"):
    response = client.get(path, {"format": "json"})
    return response.status_code, response.json()


@pytest.fixture
def fresh_cache():
    from django.core.cache import cache

    cache.delete(HEARTBEAT_KEY)
    yield cache
    cache.delete(HEARTBEAT_KEY)


@pytest.mark.django_db
def test_health_needs_no_login_and_reports_beat_alive_or_not(client, fresh_cache):
    status, body = health(client)
    assert status == 500
    assert "beat has never reported" in body["BeatAlive()"]
    assert body["Database(alias='default')"] == "OK"
    assert body["Broker()"] == "OK"

    record_heartbeat()
    status, body = health(client)
    assert status == 200, body
    assert body["BeatAlive()"] == "OK"

    record_heartbeat(time.time() - 600)
    status, body = health(client)
    assert status == 500
    # The age counts from the heartbeat to the request: 600 s, or a little more on a busy host.
    age = re.search(r"beat last reported (\d+) s ago", body["BeatAlive()"])
    assert age and 600 <= int(age.group(1)) < 630, body["BeatAlive()"]


@pytest.mark.django_db(transaction=True)  # checks run in a thread with its own connection
def test_health_lists_each_connections_last_successful_sync_and_fails_when_stale(
    client, fresh_cache
):
    record_heartbeat()
    fresh = Connection.objects.create(
        name="Fresh", brightpearl_account="a", sync_interval_minutes=5
    )
    stale = Connection.objects.create(
        name="Stale", brightpearl_account="b", sync_interval_minutes=5
    )
    Connection.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=2))
    SyncRun.objects.create(
        connection=stale,
        status=SyncRun.Status.SUCCEEDED,
        finished_at=timezone.now() - timedelta(hours=3),
    )
    SyncRun.objects.create(  # a failed run does not count as a success
        connection=stale, status=SyncRun.Status.FAILED, finished_at=timezone.now()
    )
    status, body = health(client)
    assert status == 500
    assert body["connections"][str(fresh.pk)]["stale"] is False
    assert body["connections"][str(stale.pk)] == {
        "last_successful_sync_age_seconds": pytest.approx(3 * 3600, abs=60),
        "stale": True,
    }
    assert f"connection {stale.pk}: 180 min" in body["SyncAges()"]
    assert "Stale" not in json.dumps(body)  # merchants' names stay private

    SyncRun.objects.create(
        connection=stale, status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now()
    )
    assert health(client)[0] == 200


@pytest.mark.django_db
def test_broker_down_fails_health_but_not_the_live_probe(client, fresh_cache):
    from config.celery_app import app

    record_heartbeat()
    old = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        status, body = health(client)
        live_status, live = health(client, "/health/live/")
    finally:
        app.conf.broker_url = old
    assert status == 500 and "broker unreachable" in body["Broker()"]
    assert live_status == 200 and list(live) == ["Database(alias='default')"]


@pytest.mark.django_db
def test_health_command_exit_status(fresh_cache, capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("connector_health", "beat")
    assert exited.value.code == 1
    assert "beat: Unavailable" in capsys.readouterr().out
    record_heartbeat()
    call_command("connector_health", "beat", "database")
    assert capsys.readouterr().out.splitlines() == ["beat: OK", "database: OK"]


def test_beat_scheduler_records_its_heartbeat_on_every_tick(fresh_cache):
    from unittest import mock

    from django_celery_beat.schedulers import DatabaseScheduler

    from connector.beat import HeartbeatScheduler, last_heartbeat

    scheduler = HeartbeatScheduler.__new__(HeartbeatScheduler)  # no app: only tick() matters
    with mock.patch.object(DatabaseScheduler, "tick", return_value=5.0):
        assert scheduler.tick() == 5.0
    assert last_heartbeat() == pytest.approx(time.time(), abs=5)


# --- metrics ---------------------------------------------------------------------------------
def scrape(client, **headers) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return response.content.decode()


def value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.django_db
def test_metrics_count_runs_items_and_webhooks_once_each(client):
    connection = Connection.objects.create(name="M", brightpearl_account="m")
    runs = 'connector_sync_runs_total{status="succeeded",trigger="admin"}'
    items = 'connector_sync_items_total{kind="credit",outcome="flagged"}'
    hooks = 'connector_webhooks_received_total{source="loop"}'
    before = scrape(client)

    run = SyncRun.objects.create(connection=connection, trigger=SyncRun.Trigger.ADMIN)
    assert value(scrape(client), runs) == value(before, runs)  # still running: not counted
    run.status, run.finished_at = SyncRun.Status.SUCCEEDED, timezone.now()
    run.save()
    run.save()  # saved again (e.g. a later update): still one run
    SyncEvent.objects.create(
        run=run, connection=connection, kind="credit", outcome="flagged", message="x"
    )
    WebhookEvent.objects.create(connection=connection, source="loop", body="{}")

    after = scrape(client)
    assert value(after, runs) == value(before, runs) + 1
    assert value(after, items) == value(before, items) + 1
    assert value(after, hooks) == value(before, hooks) + 1
    assert f'connector_last_successful_sync_age_seconds{{connection="{connection.pk}"}}' in after


@pytest.mark.django_db
def test_metrics_count_brightpearl_requests_and_503s(client, sandbox_account):
    from connector.services.brightpearl import client_for

    connection = Connection.objects.create(
        name="BP",
        brightpearl_account=sandbox_account.code,
        brightpearl_app_ref=sandbox_account.app_ref,
        brightpearl_account_token=sandbox_account.account_token,
    )
    before = scrape(client)
    # A short throttle window: the 503 says to wait until its end (under a second).
    sandbox_account.control.set_throttle(budget=200, window_seconds=0.5)
    sandbox_account.control.add_fault("/order-service/order-status", status=503, times=1)
    log_context.reset()
    bp = client_for(connection)
    bp.get_order_statuses()
    # Later log lines name the Brightpearl request they follow.
    assert log_context.current()["brightpearl_request_id"] == bp.last_ruid
    after = scrape(client)
    assert value(after, "connector_brightpearl_requests_total") == (
        value(before, "connector_brightpearl_requests_total") + 2
    )
    assert value(after, "connector_brightpearl_throttled_total") == (
        value(before, "connector_brightpearl_throttled_total") + 1
    )


@pytest.mark.django_db
def test_metrics_token_is_required_when_set(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    text = scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert "connector_sync_runs_total" in text


@pytest.mark.django_db(transaction=True)
def test_queue_depth_is_read_from_the_broker(client, redis_url):
    import uuid

    from config.celery_app import app

    queue = f"depth-{uuid.uuid4().hex[:8]}"
    old = app.conf.task_default_queue
    try:
        with override_settings(CELERY_TASK_DEFAULT_QUEUE=queue):
            app.conf.task_default_queue = queue
            for _ in range(3):
                app.send_task("connector.tasks.prune_sync_logs", queue=queue)
            text = scrape(client)
    finally:
        app.conf.task_default_queue = old
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    assert value(text, f'connector_queue_depth{{queue="{queue}"}}') == 3


# --- logs ------------------------------------------------------------------------------------
def format_line(formatter_name: str, message: str, **extra) -> str:
    from logging.config import dictConfig  # noqa: F401

    from django.conf import settings

    from connector.logging import AddLogContext

    config = settings.LOGGING["formatters"][formatter_name]
    if "()" in config:
        from django.utils.module_loading import import_string

        options = {k: v for k, v in config.items() if k != "()"}
        formatter = import_string(config["()"])(**options)
    else:
        formatter = logging.Formatter(config["format"])
    record = logging.LogRecord("connector.sync", logging.INFO, __file__, 1, message, (), None)
    for key, val in extra.items():
        setattr(record, key, val)
    AddLogContext().filter(record)
    return formatter.format(record)


def test_json_lines_carry_connection_run_rma_and_brightpearl_request_id():
    token = log_context.bind(connection=4, run=17, brightpearl_request_id="ruid-1")
    try:
        line = json.loads(format_line("json", "credit succeeded", rma="RMA-1003"))
    finally:
        log_context.reset(token)
    assert line["message"] == "credit succeeded"
    assert line["level"] == "INFO" and line["logger"] == "connector.sync"
    assert (line["connection"], line["run"], line["rma"], line["brightpearl_request_id"]) == (
        "4",
        "17",
        "RMA-1003",
        "ruid-1",
    )
    assert "context_suffix" not in line and "task" not in line  # nothing empty or internal


def test_readable_lines_carry_the_same_context():
    token = log_context.bind(connection=4, run=17)
    try:
        line = format_line("text", "credit succeeded", rma="RMA-1003")
    finally:
        log_context.reset(token)
    assert line.endswith("credit succeeded [connection=4 rma=RMA-1003 run=17]")


def test_production_logs_are_json_and_development_logs_readable():
    import os
    import subprocess
    import sys

    def handler_formatter(debug: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
        env["DEBUG"] = debug
        return subprocess.run(
            [
                sys.executable,
                "-c",
                "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings';"
                "from django.conf import settings;"
                "print(settings.LOGGING['handlers']['console']['formatter'])",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert handler_formatter("false") == "json"
    assert handler_formatter("true") == "text"


# --- static files ----------------------------------------------------------------------------
def test_admin_css_is_served_by_the_app_itself_with_debug_off(client, settings):
    assert settings.DEBUG is False
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
