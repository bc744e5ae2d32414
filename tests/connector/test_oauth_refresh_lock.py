"""Issue #12: an OAuth refresh is locked across processes and hosts. Brightpearl's refresh
tokens rotate: two workers refreshing at once with the same refresh token would leave one of
them (and possibly the stored pair) with a token already used."""

import threading

import pytest
from django.db import connection as db

from connector.models import AuthMode, Connection
from connector.services.connection_check import check_connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("brightpearl_oauth_at_sandbox"),
]


def oauth_connection(sandbox_account) -> Connection:
    oauth = sandbox_account.oauth
    return Connection.objects.create(
        name=f"OAuth {sandbox_account.code}",
        brightpearl_account=sandbox_account.code,
        brightpearl_app_ref=sandbox_account.app_ref,
        platform="generic",
        refund_method_code="1200",
        brightpearl_auth_mode=AuthMode.OAUTH,
        brightpearl_dev_ref=oauth["devRef"],
        brightpearl_client_secret=oauth["clientSecret"],
        brightpearl_access_token=oauth["accessToken"],
        brightpearl_refresh_token=oauth["refreshToken"],
    )


def test_a_worker_holding_old_tokens_adopts_the_pair_another_host_stored(sandbox_account):
    connection = oauth_connection(sandbox_account)
    elsewhere = Connection.objects.get(pk=connection.pk)  # loaded by another host, before
    sandbox_account.control.expire_oauth()
    assert check_connection(connection)[0].ok  # this host refreshes; the old pair is retired
    connection.refresh_from_db()
    stored = connection.brightpearl_refresh_token

    # The other host's access token is refused; its refresh token was used already. It must
    # take the stored pair, not spend the old refresh token (refused: the merchant is locked out).
    assert check_connection(elsewhere)[0].ok
    connection.refresh_from_db()
    assert connection.brightpearl_refresh_token == stored


def test_two_workers_refreshing_at_once_both_go_on(sandbox_account, postgres):
    """Two threads (two workers) race on the refresh: the row lock needs a real database."""
    oauth = sandbox_account.oauth
    connection = oauth_connection(sandbox_account)
    sandbox_account.control.expire_oauth()
    results: dict[int, list] = {}
    start = threading.Barrier(2)

    def worker(n: int) -> None:
        try:
            mine = Connection.objects.get(pk=connection.pk)  # each its own client and tokens
            start.wait()
            results[n] = check_connection(mine)
        finally:
            db.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    for n in (1, 2):
        assert all(item.ok for item in results[n]), results[n]
    # The stored pair is the live one: the next expiry is refreshed with it.
    connection.refresh_from_db()
    assert connection.brightpearl_refresh_token != oauth["refreshToken"]
    sandbox_account.control.expire_oauth()
    assert check_connection(connection)[0].ok
