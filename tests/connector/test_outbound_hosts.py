"""Credentials go only where the settings say: the Brightpearl host from BRIGHTPEARL_API_URL and
a datacentre code, the platform's public API or an origin PLATFORM_URL_ALLOWLIST names."""

from __future__ import annotations

import pytest

from connector.models import Connection
from connector.outbound import PlatformURLNotAllowed, platform_url_problem
from connector.services.connection_check import check_connection
from connector.services.platforms import adapter_for
from returns.platforms.loop.client import LOOP_API_URL
from returns.platforms.returngo.client import RETURNGO_API_URL
from tests.echo_server import EchoServer
from tests.support.admin_forms import REFUND_INLINES

from .admin_roles import admin_url, client_for, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def listener():
    server = EchoServer(200, "brightpearl").start()
    yield server
    server.stop()


def shell_connection(**fields) -> Connection:
    """Created from the shell or a command: no form validation in the way."""
    values = {
        "name": "Shell-made",
        "brightpearl_account": "acme",
        "brightpearl_app_ref": "acme_app",
        "brightpearl_account_token": "SEKRET-ACCT-TOKEN-111-abcdef",
        "platform": "loop",
        "platform_api_key": "SEKRET-PLATFORM-KEY-666-abcdef",
        "refund_method_code": "1200",
        **fields,
    }
    return Connection.objects.create(**values)


def test_a_datacentre_that_names_a_host_sends_nothing_anywhere(listener, settings):
    settings.BRIGHTPEARL_API_URL = "http://{datacentre}.brightpearl.example/public-api/{account}"
    port = listener.url.rsplit(":", 1)[1]
    connection = shell_connection(brightpearl_datacentre=f"127.0.0.1:{port}/")
    items = check_connection(connection)
    assert not listener.requests, "the account token reached the host named in the datacentre"
    assert [(i.field, i.ok) for i in items] == [("brightpearl_datacentre", False)]
    assert "not a Brightpearl datacentre code" in items[0].message


def test_the_account_code_is_one_encoded_path_segment(listener, settings):
    settings.BRIGHTPEARL_API_URL = listener.url + "/public-api/{account}"
    check_connection(shell_connection(brightpearl_account="acme/../other?x=1"))
    assert listener.requests[0]["path"].startswith("/public-api/acme%2F..%2Fother%3Fx%3D1/")


@pytest.mark.parametrize(
    ("platform", "url", "allowed"),
    [
        ("loop", "", True),
        ("loop", LOOP_API_URL, True),
        ("loop", LOOP_API_URL + "/", True),
        ("returngo", RETURNGO_API_URL, True),
        ("loop", RETURNGO_API_URL, False),
        ("loop", "http://api.loopreturns.com/api/v1", False),
        ("loop", "https://api.loopreturns.com.evil.example/api/v1", False),
        ("loop", "https://api.loopreturns.com@evil.example/api/v1", False),
        ("loop", "https://user:pw@api.loopreturns.com/api/v1", False),
        ("loop", "https://api.loopreturns.com/other", False),
        ("loop", "http://169.254.169.254/latest/meta-data/", False),
        ("loop", "http://127.0.0.1:6379/", False),
        ("loop", "http://localhost:8901/api/v1", False),
        ("returngo", "http://10.0.0.5/", False),
    ],
)
def test_platform_urls_other_than_the_public_api_are_refused(settings, platform, url, allowed):
    settings.PLATFORM_URL_ALLOWLIST = []
    assert (platform_url_problem(platform, url) is None) == allowed


@pytest.mark.parametrize(
    ("allowlist", "url", "allowed"),
    [
        (["http://127.0.0.1:8901"], "http://127.0.0.1:8901/api/v1", True),
        (["http://127.0.0.1:8901"], "http://127.0.0.1:8902/api/v1", False),
        (["http://127.0.0.1:*"], "http://127.0.0.1:45123", True),
        (["http://127.0.0.1:*"], "http://127.0.0.2:45123", False),
        (["http://127.0.0.1:*"], "https://127.0.0.1:45123", False),
        (["https://sandbox.example"], "https://sandbox.example/x", True),
        (["https://sandbox.example"], "https://sandbox.example:8443/x", False),
    ],
)
def test_the_allowlist_names_origins(settings, allowlist, url, allowed):
    settings.PLATFORM_URL_ALLOWLIST = allowlist
    assert (platform_url_problem("loop", url) is None) == allowed


def test_show_destinations_never_sends_the_key_to_a_url_outside_the_allowlist(listener, settings):
    """The probe: pointing the URL at one's own host and pressing "Show destinations"."""
    settings.PLATFORM_URL_ALLOWLIST = []
    connection = shell_connection(platform_api_url=listener.url + "/api/v1")
    with pytest.raises(PlatformURLNotAllowed):
        adapter_for(connection).list_destinations()
    response = client_for(staff_user("configure")).post(
        admin_url(Connection, "changelist"),
        {"action": "show_destinations", "index": "0", "_selected_action": [connection.pk]},
        follow=True,
    )
    assert "only when PLATFORM_URL_ALLOWLIST names them" in response.content.decode()
    assert not listener.requests, "the platform key reached a host outside the allowlist"
    settings.PLATFORM_URL_ALLOWLIST = [listener.url]
    adapter_for(connection).list_destinations()
    assert listener.requests[0]["headers"]["X-Authorization"] == connection.platform_api_key


def form_data(connection: Connection, **overrides) -> dict:
    data = {
        "name": connection.name,
        "enabled": "on",
        "brightpearl_account": connection.brightpearl_account,
        "brightpearl_datacentre": "euw1",
        "brightpearl_auth_mode": "private_account",
        "brightpearl_app_ref": connection.brightpearl_app_ref,
        "platform": connection.platform,
        "platform_api_url": connection.platform_api_url,
        "refund_method_code": "1200",
        "sync_interval_minutes": "15",
        "warehouse_mappings-TOTAL_FORMS": "0",
        "warehouse_mappings-INITIAL_FORMS": "0",
        "warehouse_mappings-MIN_NUM_FORMS": "0",
        "warehouse_mappings-MAX_NUM_FORMS": "1000",
        **REFUND_INLINES,
    }
    data.update(overrides)
    return data


def test_changing_the_platform_url_requires_the_key_again(settings, listener):
    settings.PLATFORM_URL_ALLOWLIST = [listener.url]
    connection = shell_connection(platform_api_url="")
    client = client_for(staff_user("configure"))
    url = admin_url(Connection, "change", connection.pk)
    new_url = listener.url + "/api/v1"

    response = client.post(url, form_data(connection, platform_api_url=new_url))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "enter the API key again" in " ".join(errors["platform_api_key"])
    connection.refresh_from_db()
    assert connection.platform_api_url == ""

    response = client.post(
        url, form_data(connection, platform_api_url=new_url, platform_api_key="new-key-1234")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    connection.refresh_from_db()
    assert (connection.platform_api_url, connection.platform_api_key) == (new_url, "new-key-1234")


def test_a_url_outside_the_allowlist_is_a_form_error(settings):
    settings.PLATFORM_URL_ALLOWLIST = []
    connection = shell_connection()
    response = client_for(staff_user("configure")).post(
        admin_url(Connection, "change", connection.pk),
        form_data(
            connection, platform_api_url="http://169.254.169.254/", platform_api_key="k-12345"
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "PLATFORM_URL_ALLOWLIST" in " ".join(errors["platform_api_url"])
    connection.refresh_from_db()
    assert connection.platform_api_url == ""
