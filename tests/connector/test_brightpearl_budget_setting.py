"""The client's request budget per account comes from BRIGHTPEARL_REQUESTS_PER_MINUTE; how long a
task waits for it, from BRIGHTPEARL_MAX_BLOCK_SECONDS."""

import pytest

from config import settings as project_settings
from connector.models import Connection
from connector.services.brightpearl import client_for, never_sleep_for_budget


@pytest.mark.django_db
@pytest.mark.parametrize("per_minute", [200, 1200])
def test_client_budget_follows_the_setting(settings, per_minute):
    settings.BRIGHTPEARL_REQUESTS_PER_MINUTE = per_minute
    connection = Connection(
        name="budget",
        brightpearl_account="acme",
        brightpearl_app_ref="a",
        brightpearl_account_token="t",
        platform="loop",
    )
    client = client_for(connection)
    assert client.throttle.budget == per_minute
    assert client.throttle.window_ms >= 60_000


@pytest.mark.django_db
def test_tasks_never_sleep_for_budget_by_default_while_pages_and_commands_wait(settings):
    """Issue #12: the bound applies inside Celery tasks (`never_sleep_for_budget`, default 2 s);
    a client built outside one (a web request, a management command) waits as before."""
    assert project_settings.BRIGHTPEARL_MAX_BLOCK_SECONDS == 2.0
    connection = Connection(
        name="budget",
        brightpearl_account="acme",
        brightpearl_app_ref="a",
        brightpearl_account_token="t",
        platform="loop",
    )
    assert client_for(connection).throttle.max_block_seconds is None
    with never_sleep_for_budget():
        assert client_for(connection).throttle.max_block_seconds == 2.0
    assert client_for(connection).throttle.max_block_seconds is None
