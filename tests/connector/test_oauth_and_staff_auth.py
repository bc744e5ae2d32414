"""Every auth mode works against Brightpearl, and an OAuth refresh rotates the stored tokens."""

import pytest
from django.db import connection as db

from connector.models import AuthMode, Connection
from connector.services.connection_check import check_connection

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("brightpearl_oauth_at_sandbox")]


def make(sandbox_account, **fields) -> Connection:
    return Connection.objects.create(
        name=f"Auth {sandbox_account.code}",
        brightpearl_account=sandbox_account.code,
        brightpearl_app_ref=sandbox_account.app_ref,
        platform="generic",
        refund_method_code="1200",
        **fields,
    )


def test_staff_token_mode(sandbox_account):
    connection = make(
        sandbox_account,
        brightpearl_auth_mode=AuthMode.PRIVATE_STAFF_TOKEN,
        brightpearl_staff_token=sandbox_account.staff_token,
    )
    items = check_connection(connection)
    assert items[0].field == "credentials" and items[0].ok


def test_expired_oauth_token_is_refreshed_and_the_rotated_tokens_are_stored(sandbox_account):
    oauth = sandbox_account.oauth
    connection = make(
        sandbox_account,
        brightpearl_auth_mode=AuthMode.OAUTH,
        brightpearl_dev_ref=oauth["devRef"],
        brightpearl_client_secret=oauth["clientSecret"],
        brightpearl_access_token=oauth["accessToken"],
        brightpearl_refresh_token=oauth["refreshToken"],
    )
    sandbox_account.control.expire_oauth()
    items = check_connection(connection)
    assert all(i.ok for i in items), items
    connection.refresh_from_db()
    assert connection.brightpearl_refresh_token != oauth["refreshToken"]  # rotated and saved
    assert connection.brightpearl_access_token != oauth["accessToken"]
    assert connection.brightpearl_token_expires_at is not None
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT brightpearl_refresh_token FROM connector_connection WHERE id = %s",
            [connection.pk],
        )
        (raw,) = cursor.fetchone()
    assert connection.brightpearl_refresh_token not in raw  # still encrypted at rest
    # The old refresh token no longer works; the stored one does.
    sandbox_account.control.expire_oauth()
    assert check_connection(connection)[0].ok
