"""Webhook secrets never reach the logs, not even the web server's access log."""

import logging

from connector.logging import RedactWebhookSecrets, redact


def test_webhook_paths_are_redacted():
    assert redact('"POST /webhooks/brightpearl/12/s3cr3t-AbC_9/ HTTP/1.1" 202') == (
        '"POST /webhooks/brightpearl/12/•••/ HTTP/1.1" 202'
    )
    assert redact("/webhooks/returngo/3/xyz") == "/webhooks/returngo/3/•••"
    assert redact("/admin/connector/") == "/admin/connector/"


def test_the_filter_rewrites_formatted_records(caplog):
    logger = logging.getLogger("django.server")
    handler_filter = RedactWebhookSecrets()
    record = logger.makeRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s',
        ("POST /webhooks/loop/7/topsecret/ HTTP/1.1", 202),
        None,
    )
    handler_filter.filter(record)
    assert "topsecret" not in record.getMessage()
    assert "/webhooks/loop/7/•••/" in record.getMessage()


def test_system_check_warns_about_a_loop_connection_without_its_signing_secret(db):
    from django.core.checks import run_checks

    from tests.connector.factories import ConnectionFactory

    ConnectionFactory(name="Unsigned", platform_webhook_secret=None)
    ConnectionFactory(name="Signed", platform_webhook_secret="s")
    warnings = [
        m
        for m in run_checks(include_deployment_checks=False, databases=["default"])
        if m.id == "connector.W003"
    ]
    assert len(warnings) == 1 and "'Unsigned'" in warnings[0].msg
