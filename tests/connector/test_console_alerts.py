"""Alerts: staff hear about a flagged return or a failed item by e-mail (Django's mail, locmem in
tests) and/or a webhook (the project's receiver, over real HTTP), as one digest at most every N
minutes per connection; the webhook URL obeys the outbound-host rules."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from connector.admin.alerts import AlertSettingsForm
from connector.models import AlertSettings, Problem
from connector.services.alerts import send_due_digests
from connector.tasks import send_alert_digests

pytestmark = pytest.mark.django_db

CREDIT_POST = r"^/order-service/sales-credit/?$"


def flagged_return(world, prefix):
    sku = f"{prefix}-{world.bp.code}"
    sale = world.sale([(sku, 1, "50.00", "10.00")])
    world.loop_return(sale, [{"sku": sku}, {"sku": f"NOT-SOLD-{prefix}"}])
    world.sync()


def test_a_digest_by_mail_and_webhook_at_most_every_n_minutes(world, webhook_receiver, settings):
    settings.ALERT_WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]
    AlertSettings.objects.create(
        connection=world.connection,
        email_to="ops@example.com, lead@example.com",
        webhook_url=f"{webhook_receiver.url}/slack",
        digest_minutes=10,
    )
    flagged_return(world, "COAT")
    assert send_alert_digests() == 1  # the housekeeping task

    [message] = mail.outbox
    assert message.to == ["ops@example.com", "lead@example.com"]
    assert "1 new problem(s)" in message.subject and world.connection.name in message.subject
    assert "NOT-SOLD-COAT is not on original order" in message.body
    assert "What to do: The customer returned an item that was not on their order" in message.body
    [posted] = webhook_receiver.wait_for(1)
    assert posted["path"] == "/slack"
    assert json.loads(posted["body"])["text"] == message.body

    flagged_return(world, "HAT")  # a second problem inside the 10 minutes: held back
    assert send_due_digests() == 0 and len(mail.outbox) == 1
    later = timezone.now() + timedelta(minutes=11)
    assert send_due_digests(now=later) == 1
    assert "NOT-SOLD-HAT" in mail.outbox[1].body
    assert "NOT-SOLD-COAT" not in mail.outbox[1].body  # each problem in one digest only
    assert send_due_digests(now=later + timedelta(minutes=11)) == 0  # nothing new


def test_only_the_kinds_asked_for_are_sent_and_a_refusing_webhook_is_retried(
    world, webhook_receiver, settings
):
    settings.ALERT_WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:*"]
    alert = AlertSettings.objects.create(
        connection=world.connection,
        webhook_url=f"{webhook_receiver.url}/hook",
        on_flagged=False,
        digest_minutes=1,
    )
    flagged_return(world, "COAT")
    assert send_due_digests() == 0  # flags were not asked for
    sku = f"ITEM-{world.bp.code}"
    world.loop_return(world.sale([(sku, 1, "20.00", "4.00")]), [{"sku": sku}])
    world.bp.control.add_fault(CREDIT_POST, "error", method="POST", status=400, times=1)
    world.sync()
    webhook_receiver.statuses = [500]
    assert send_due_digests() == 0
    alert.refresh_from_db()
    assert alert.last_error == "webhook: answered HTTP 500" and alert.last_sent_at is None
    assert send_due_digests() == 1  # tried again on the next tick
    texts = [json.loads(r["body"])["text"] for r in webhook_receiver.wait_for(2)]
    assert "Brightpearl refused the credit" in texts[1] and "NOT-SOLD" not in texts[1]
    failed = Problem.objects.get(outcome="failed")
    assert failed.alerted_at is not None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:9/hook", False),  # not https, not listed
        ("https://127.0.0.1/hook", False),  # loopback
        ("https://10.1.2.3/hook", False),  # private network
        ("https://169.254.169.254/latest", False),  # a metadata service
        ("https://user:pw@hooks.example.com/x", False),  # credentials in the URL
        ("http://127.0.0.1:8902/hook", True),  # listed in ALERT_WEBHOOK_URL_ALLOWLIST
        ("", True),  # no webhook: e-mail only
    ],
)
def test_the_webhook_url_obeys_the_outbound_host_rules(db, settings, url, allowed):
    settings.ALERT_WEBHOOK_URL_ALLOWLIST = ["http://127.0.0.1:8902"]
    form = AlertSettingsForm(
        data={"webhook_url": url, "email_to": "", "digest_minutes": "5", "on_failed": "on"}
    )
    assert form.is_valid() == allowed, form.errors


def test_a_bad_address_is_refused_with_its_name(db):
    form = AlertSettingsForm(
        data={"email_to": "ops@example.com, not-an-address", "digest_minutes": "5"}
    )
    assert not form.is_valid()
    assert form.errors["email_to"] == ["not-an-address is not an e-mail address."]
