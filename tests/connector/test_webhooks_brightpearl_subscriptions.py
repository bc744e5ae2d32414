"""Brightpearl webhook subscriptions made by the connector, reconciled against the sandbox; the
command, the admin actions, and the webhook-event admin."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from connector.models import Connection, WebhookEvent
from connector.services import subscriptions

pytestmark = pytest.mark.django_db
BASE = "https://connector.example.com"


@pytest.fixture
def hooked(world, settings):
    settings.PUBLIC_BASE_URL = BASE
    return world


def hooks(world) -> list[dict]:
    return sorted(world.state()["webhooks"], key=lambda h: h["id"])


def create(world, **changes) -> int:
    payload = subscriptions.desired(world.connection)["goods-in-note.created"] | changes
    return world.bp.post("/integration-service/webhook", payload).json()["response"]


def test_register_creates_exactly_the_needed_subscriptions(hooked):
    connection = hooked.connection
    result = subscriptions.register(connection)
    assert sorted(result.created) == sorted(subscriptions.EVENTS)
    stored = hooks(hooked)
    assert sorted(h["subscribeTo"] for h in stored) == sorted(subscriptions.EVENTS)
    for hook in stored:
        assert hook["uriTemplate"] == (
            f"{BASE}/webhooks/brightpearl/{connection.pk}/{connection.webhook_secret}/"
        )
        assert (hook["httpMethod"], hook["contentType"]) == ("POST", "application/json")
        assert hook["idSetAccepted"] is True and hook["qualityOfService"] == 1
        assert json.loads(hook["bodyTemplate"]) == {
            "accountCode": "${account-code}",
            "resourceType": "${resource-type}",
            "id": "${resource-id}",
            "lifecycleEvent": "${lifecycle-event}",
            "fullEvent": "${full-event}",
            "raisedOn": "${raised-on}",
            "brightpearlVersion": "${brightpearl-version}",
        }
    assert Connection.objects.get(pk=connection.pk).webhooks_registered_at is not None

    again = subscriptions.register(connection)
    assert (len(again.kept), again.created, again.removed) == (3, {}, [])
    assert hooks(hooked) == stored


def test_reconcile_keeps_correct_removes_stale_and_leaves_others_alone(hooked):
    connection = hooked.connection
    prefix = subscriptions.url_prefix(connection)
    correct = create(hooked)
    duplicate = create(hooked)
    wrong_secret = create(hooked, uriTemplate=prefix + "old-secret/")
    wrong_body = create(hooked, subscribeTo="order.modified.order-status", bodyTemplate="{}")
    not_needed = create(hooked, subscribeTo="product.modified")
    no_id_sets = create(hooked, subscribeTo="quarantine-release.created", idSetAccepted=False)
    foreign = create(hooked, uriTemplate="https://other-app.example.com/hook")
    other_connection = create(
        hooked, uriTemplate=f"{BASE}/webhooks/brightpearl/{connection.pk + 1}/x/"
    )

    result = subscriptions.register(connection)
    assert result.kept == {"goods-in-note.created": correct}
    assert sorted(result.removed) == sorted(
        [duplicate, wrong_secret, wrong_body, not_needed, no_id_sets]
    )
    stored = hooks(hooked)
    ours = [h for h in stored if subscriptions.is_ours(connection, h)]
    assert sorted(h["subscribeTo"] for h in ours) == sorted(subscriptions.EVENTS)  # no dupes
    assert {foreign, other_connection} <= {h["id"] for h in stored}


def test_rotating_the_secret_re_registers(hooked):
    connection = hooked.connection
    subscriptions.register(connection)
    old_secret = connection.webhook_secret
    result = subscriptions.rotate_secret(connection)
    connection.refresh_from_db()
    assert connection.webhook_secret != old_secret
    assert len(result.created) == 3 and len(result.removed) == 3
    uris = {h["uriTemplate"] for h in hooks(hooked)}
    assert uris == {subscriptions.webhook_uri(connection)}
    assert not any(old_secret in uri for uri in uris)


def test_remove_deletes_only_ours(hooked):
    foreign = create(hooked, uriTemplate="https://other-app.example.com/hook")
    subscriptions.register(hooked.connection)
    assert len(subscriptions.remove(hooked.connection)) == 3
    assert [h["id"] for h in hooks(hooked)] == [foreign]
    assert Connection.objects.get(pk=hooked.connection.pk).webhooks_registered_at is None


def test_command_never_prints_the_secret(hooked, capsys):
    connection = hooked.connection
    create(hooked, uriTemplate=subscriptions.url_prefix(connection) + "an-old-secret/")
    for flag in ("--register", "--list", "--rotate", "--list", "--remove"):
        call_command("connector_webhooks", str(connection.pk), flag)
    out = capsys.readouterr().out
    connection.refresh_from_db()
    assert "•••" in out
    assert "an-old-secret" not in out
    assert connection.webhook_secret not in out
    assert "created" in out and "Removed 3 subscription(s)." in out


def test_redact_hides_current_and_unknown_secrets(hooked):
    connection = hooked.connection
    prefix = subscriptions.url_prefix(connection)
    assert subscriptions.redact(subscriptions.webhook_uri(connection), connection) == (
        prefix + "•••/"
    )
    assert subscriptions.redact(prefix + "stale-one/", connection) == prefix + "•••/"
    assert connection.webhook_secret not in subscriptions.redact(
        f"error at {subscriptions.webhook_uri(connection)}", connection
    )


# --- admin -----------------------------------------------------------------------------------


def run_action(client, action: str, pks) -> list[str]:
    response = client.post(
        reverse("admin:connector_connection_changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def test_admin_register_and_rotate_actions(hooked, admin_client):
    connection = hooked.connection
    old_secret = connection.webhook_secret
    [message] = run_action(admin_client, "register_brightpearl_webhooks", [connection.pk])
    assert "3 created" in message and "•••" in message
    assert old_secret not in message
    [message] = run_action(admin_client, "rotate_webhook_secret", [connection.pk])
    connection.refresh_from_db()
    assert connection.webhook_secret != old_secret
    assert "3 created, 3 stale removed" in message
    assert connection.webhook_secret not in message and old_secret not in message
    page = admin_client.get(reverse("admin:connector_connection_changelist")).content.decode()
    assert "Register Brightpearl webhooks" in page and "Send test webhook" in page


def test_admin_test_webhook_says_when_nothing_arrived(hooked, admin_client, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    subscriptions.register(hooked.connection)
    [message] = run_action(admin_client, "send_test_webhook", [hooked.connection.pk])
    assert "nothing reached" in message
    assert hooked.connection.webhook_secret not in message


def test_webhook_event_admin_lists_filters_searches_and_reprocesses(
    world, admin_client, django_capture_on_commit_callbacks
):
    events = [
        WebhookEvent.objects.create(
            connection=world.connection,
            source="brightpearl",
            event="goods-in-note.created",
            resource_ids=ids,
            status=status,
        )
        for ids, status in (("1-5,99", "ignored"), ("77", "failed"), ("8", "rejected"))
    ]
    loop_event = WebhookEvent.objects.create(
        connection=world.connection, source="loop", event="return.updated", status="failed"
    )
    url = reverse("admin:connector_webhookevent_changelist")
    for query in ("", "?status__exact=failed", "?q=99", "?source__exact=brightpearl"):
        assert admin_client.get(url + query).status_code == 200
    assert "1-5,99" in admin_client.get(url + "?q=99").content.decode()
    assert admin_client.get(url + f"{events[0].pk}/change/").status_code == 200
    assert admin_client.get(url + "add/").status_code == 403

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            url,
            {
                "action": "reprocess_selected",
                "_selected_action": [e.pk for e in events] + [loop_event.pk],
            },
            follow=True,
        )
    [message] = [str(m) for m in response.context["messages"]]
    assert "queued for 3 event(s)" in message and "1 rejected event(s) skipped" in message
    assert len(callbacks) == 3  # enqueued after commit, not inline; Loop's by its own task
    statuses = dict(WebhookEvent.objects.values_list("pk", "status"))
    assert [statuses[e.pk] for e in events] == ["received", "received", "rejected"]
    assert statuses[loop_event.pk] == "received"
