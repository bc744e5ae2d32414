"""No admin page shows a secret, for any role: every page of every registered ModelAdmin (list,
search, add, change, history, delete confirmation), every custom URL and every action's result
is rendered as each role and searched for every secret of a connection filled with known values.

Pages, actions and URLs are discovered from ``admin.site``, so new ones are covered too.
"""

import secrets

import pytest
from django.urls import reverse

from connector.models import Connection

from .admin_roles import (
    ROLES,
    WEBHOOK_ADDRESS,
    actions_of,
    admin_url,
    admins,
    client_for,
    custom_url,
    custom_urls,
    populate,
    staff_user,
)

pytestmark = pytest.mark.django_db


def known(kind: str) -> str:
    return f"SEKRET-{kind}-{secrets.token_hex(6)}"


@pytest.fixture
def connection_with_every_secret(world):
    connection = world.connection
    connection.brightpearl_staff_token = known("STAFF-TOKEN")
    connection.brightpearl_client_secret = known("CLIENT-SECRET")
    connection.brightpearl_access_token = known("ACCESS-TOKEN")
    connection.brightpearl_refresh_token = known("REFRESH-TOKEN")
    connection.platform_webhook_secret = known("LOOP-SIGNING")
    # A report stored before errors were redacted at the source: the page must still hide it.
    connection.last_check_report = [
        {
            "field": "credentials",
            "ok": False,
            "message": "Brightpearl refused brightpearl-account-token: "
            f"{connection.brightpearl_account_token}",
        }
    ]
    connection.save()
    populate(world)
    return connection


def stored_secrets(connection: Connection) -> set[str]:
    connection.refresh_from_db()
    values = {getattr(connection, name) for name in Connection.SECRET_FIELDS}
    values.add(connection.webhook_secret)
    assert all(values), "every secret must be filled for this test to mean something"
    return values


def assert_no_secret(html: str, secret_values: set[str], where: str) -> None:
    for secret in secret_values:
        # The full value never; the last 4 characters at most ("set (…abcd)").
        assert secret[:-4] not in html, f"{where} shows a secret ({secret[:10]}…)"


def _test_first(item):
    return item[0] != "send_test_webhook"  # waits for a delivery once webhooks exist


@pytest.mark.parametrize("role", [*ROLES, "superuser"])
def test_no_admin_page_or_action_result_shows_a_secret(connection_with_every_secret, role):
    connection = connection_with_every_secret
    seen = stored_secrets(connection) | {"wrong-password"}  # populate()'s failed login
    client = client_for(staff_user(role))
    pages = [reverse("admin:index")]
    pages += [reverse("admin:app_list", args=[label]) for label in ("connector", "returns")]
    for model, ma in admins():
        obj = connection if model is Connection else model._default_manager.first()
        pages += [
            admin_url(model, "changelist"),
            admin_url(model, "changelist") + "?q=SEKRET",
            admin_url(model, "add"),
        ]
        if obj is not None:
            pages += [
                admin_url(model, "change", obj.pk),
                admin_url(model, "history", obj.pk),
                admin_url(model, "delete", obj.pk),
            ]
            pages += [custom_url(p, obj) for p in custom_urls(ma)]
    rendered = 0
    for url in pages:
        response = client.get(url)
        html = response.content.decode()
        if role in ("configure", "superuser"):
            html = WEBHOOK_ADDRESS.sub("", html)
        else:
            assert 'class="webhook-address"' not in html, f"{role} sees the webhook address"
        assert_no_secret(html, seen, f"{role} GET {url}")
        rendered += response.status_code == 200
    assert rendered or role == "none"

    for model, ma in admins():
        obj = connection if model is Connection else model._default_manager.first()
        if obj is None:
            continue
        for name, _ in sorted(actions_of(ma), key=_test_first):
            response = client.post(
                admin_url(model, "changelist"),
                {"action": name, "index": "0", "_selected_action": [obj.pk]},
                follow=True,
            )
            seen |= stored_secrets(connection)  # rotation makes a new one: still secret
            assert_no_secret(response.content.decode(), seen, f"{role} action {name}")


def test_view_only_change_page_shows_each_secret_as_set_with_its_last_four(
    connection_with_every_secret,
):
    connection = connection_with_every_secret
    html = (
        client_for(staff_user("view"))
        .get(admin_url(Connection, "change", connection.pk))
        .content.decode()
    )
    assert f"set (…{connection.brightpearl_staff_token[-4:]})" in html
    assert f"set (…{connection.platform_api_key[-4:]})" in html
    connection.brightpearl_staff_token = None
    connection.save()
    html = (
        client_for(staff_user("operate"))
        .get(admin_url(Connection, "change", connection.pk))
        .content.decode()
    )
    assert "not set" in html


def test_the_platform_webhook_address_is_whole_for_administrators_and_masked_for_others(
    connection_with_every_secret,
):
    connection = connection_with_every_secret
    url = admin_url(Connection, "change", connection.pk)
    address = f"/webhooks/loop/{connection.pk}/{connection.webhook_secret}/"
    html = client_for(staff_user("configure")).get(url).content.decode()
    assert '<code class="webhook-address">' in html and address in html
    html = client_for(staff_user("operate")).get(url).content.decode()
    assert f"/webhooks/loop/{connection.pk}/•••/" in html
    assert connection.webhook_secret not in html
